//! Values printed as Go's fmt prints the result of decoding JSON into `interface{}`: strings
//! raw, integers plain, floats as `%v` does (`1`, `0.5`, `1e+06`), `[a b]` for arrays,
//! `map[k:v]` for objects (keys sorted), `<nil>` for null. Also `print`, `println` and a
//! `printf` with Go's verbs, flags and `%!verb(type=value)` complaints.

use serde_json::Value;

/// Go's name for the type a JSON value decodes to.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `%v`.
pub(super) fn go_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(_) | Value::Object(_) => composite(out, value, &mut go_value),
    }
}

/// `[a b]` for an array, `map[k:v]` for an object (serde_json keeps keys sorted), each
/// element, key and value written by `elem`: the same layout for `%v` and every verb.
fn composite(out: &mut String, value: &Value, elem: &mut dyn FnMut(&mut String, &Value)) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                elem(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                elem(out, &Value::String(k.clone()));
                out.push(':');
                elem(out, v);
            }
            out.push(']');
        }
        _ => elem(out, value),
    }
}

pub(super) fn to_go_string(value: &Value) -> String {
    let mut out = String::new();
    go_value(&mut out, value);
    out
}

fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Decimal digits (no leading or trailing zeros) and exponent of `x` rounded to `digits`
/// significant digits, or to the shortest string that reads back as `x` when `None`:
/// `x = 0.d1d2d3… × 10^point`.
fn decimal_digits(x: f64, digits: Option<usize>) -> (String, i32) {
    let sci = match digits {
        Some(d) => format!("{:.*e}", d.saturating_sub(1), x.abs()),
        None => format!("{:e}", x.abs()),
    };
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always writes an exponent");
    let exp: i32 = exp.parse().expect("{:e} writes a decimal exponent");
    let mut ds: String = mantissa.chars().filter(|c| *c != '.').collect();
    while ds.len() > 1 && ds.ends_with('0') {
        ds.pop();
    }
    (ds, exp + 1)
}

fn special(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x == f64::INFINITY {
        Some("+Inf")
    } else if x == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// `%e` layout from digits and point: `d.ddd` then `e±XX`. `decimals` pads with zeros.
fn layout_e(negative: bool, ds: &str, point: i32, decimals: usize, upper: bool) -> String {
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    let exp = if ds == "0" { 0 } else { point - 1 };
    s.push_str(&ds[..1]);
    if decimals > 0 {
        s.push('.');
        let frac = &ds[1..];
        s.push_str(&frac[..frac.len().min(decimals)]);
        s.extend(std::iter::repeat_n(
            '0',
            decimals.saturating_sub(frac.len()),
        ));
    }
    s.push(if upper { 'E' } else { 'e' });
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.abs()));
    s
}

/// `%f` layout from digits and point, with exactly `decimals` decimals.
fn layout_f(negative: bool, ds: &str, point: i32, decimals: usize) -> String {
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    if point <= 0 {
        s.push('0');
    } else {
        let p = point as usize;
        s.push_str(&ds[..p.min(ds.len())]);
        s.extend(std::iter::repeat_n('0', p.saturating_sub(ds.len())));
    }
    if decimals > 0 {
        s.push('.');
        let mut frac = String::new();
        if point < 0 {
            frac.extend(std::iter::repeat_n('0', (-point) as usize));
        }
        frac.push_str(&ds[point.clamp(0, ds.len() as i32) as usize..]);
        frac.truncate(decimals);
        s.push_str(&frac);
        s.extend(std::iter::repeat_n('0', decimals - frac.len()));
    }
    s
}

/// `%g` (and `%v` with `precision` `None`): `%e` for exponents below -4 or at least the
/// precision (6 for the shortest form), `%f` otherwise, without trailing zeros.
fn format_g(x: f64, precision: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(x) {
        return s.to_string();
    }
    let precision = precision.map(|p| p.max(1));
    let (ds, point) = decimal_digits(x, precision);
    let negative = x.is_sign_negative();
    let limit = match precision {
        None => 6,
        Some(p) if p > ds.len() && ds.len() as i32 >= point => ds.len() as i32,
        Some(p) => p as i32,
    };
    let exp = if ds == "0" { 0 } else { point - 1 };
    if exp < -4 || exp >= limit {
        layout_e(negative, &ds, point, ds.len() - 1, upper)
    } else {
        let decimals = (ds.len() as i32 - point).max(0) as usize;
        layout_f(negative, &ds, point, decimals)
    }
}

/// A float64 as Go's `%v` prints it: `1`, `0.25`, `123456`, `1.234567e+06`, `1e-05`.
pub(super) fn go_float(x: f64) -> String {
    format_g(x, None, false)
}

/// A float64 as Go's `%.<precision>g` prints it (Docker's size helpers use it).
pub(crate) fn go_g(x: f64, precision: usize) -> String {
    format_g(x, Some(precision), false)
}

fn format_e(x: f64, decimals: usize, upper: bool) -> String {
    if let Some(s) = special(x) {
        return s.to_string();
    }
    let (ds, point) = decimal_digits(x, Some(decimals + 1));
    layout_e(x.is_sign_negative(), &ds, point, decimals, upper)
}

fn format_f(x: f64, decimals: usize) -> String {
    if let Some(s) = special(x) {
        return s.to_string();
    }
    format!("{x:.decimals$}")
}

/// Go's `strconv.Quote`.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `print`: operands printed with `%v`, a space between two operands when neither is a string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !arg.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        go_value(&mut out, arg);
    }
    out
}

/// `println`: spaces between all operands and a newline at the end.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        go_value(&mut out, arg);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    /// Pads to the width with spaces (left, or right with `-`), or zeros after the sign.
    fn pad(&self, text: String, numeric: bool) -> String {
        let len = text.chars().count();
        let Some(width) = self.width.filter(|w| *w > len) else {
            return text;
        };
        let fill = width - len;
        if self.minus {
            return text + &" ".repeat(fill);
        }
        if self.zero && numeric {
            let sign_len = usize::from(text.starts_with(['-', '+', ' ']));
            let (sign, digits) = text.split_at(sign_len);
            return format!("{sign}{}{digits}", "0".repeat(fill));
        }
        " ".repeat(fill) + &text
    }

    fn sign(&self, negative: bool) -> &'static str {
        if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }
}

/// `printf`: Go's verbs `v s q d b o O x X c U e E f F g G t %`, flags `+ - # 0 space`, width
/// and precision (also `*`). A wrong verb for a value prints `%!d(string=abc)`, a missing
/// operand `%!d(MISSING)` and leftovers `%!(EXTRA int=1)`, as Go does.
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        let mut star = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
                        out: &mut String|
         -> Option<usize> {
            if chars.peek() == Some(&'*') {
                chars.next();
                let n = args.get(next_arg).and_then(Value::as_i64);
                next_arg += 1;
                match n {
                    Some(n) if n >= 0 => Some(n as usize),
                    _ => {
                        out.push_str("%!(BADWIDTH)");
                        None
                    }
                }
            } else {
                let mut n = None;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    n = Some(n.unwrap_or(0) * 10 + d as usize);
                    chars.next();
                }
                n
            }
        };
        spec.width = star(&mut chars, &mut out);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(star(&mut chars, &mut out).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(next_arg) {
            None => out.push_str(&format!("%!{verb}(MISSING)")),
            Some(arg) => format_arg(&mut out, verb, spec, arg, true),
        }
        next_arg += 1;
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[next_arg..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(type_name(arg));
            out.push('=');
            go_value(&mut out, arg);
        }
        out.push(')');
    }
    out
}

fn bad_verb(out: &mut String, verb: char, arg: &Value) {
    if arg.is_null() {
        out.push_str(&format!("%!{verb}(<nil>)"));
    } else {
        out.push_str(&format!(
            "%!{verb}({}={})",
            type_name(arg),
            to_go_string(arg)
        ));
    }
}

fn format_arg(out: &mut String, verb: char, spec: Spec, arg: &Value, top: bool) {
    match arg {
        Value::Null => {
            if verb == 'v' || !top {
                out.push_str(&spec.pad("<nil>".into(), false));
            } else {
                bad_verb(out, verb, arg);
            }
        }
        Value::Bool(b) => match verb {
            'v' | 't' => out.push_str(&spec.pad(b.to_string(), false)),
            _ => bad_verb(out, verb, arg),
        },
        Value::String(s) => match verb {
            'v' if spec.sharp => out.push_str(&spec.pad(go_quote(s), false)),
            'v' | 's' => {
                let text = match spec.precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                out.push_str(&spec.pad(text, false));
            }
            'q' => out.push_str(&spec.pad(go_quote(s), false)),
            'x' | 'X' => {
                let mut text = String::new();
                for (i, b) in s.bytes().enumerate() {
                    if i > 0 && spec.space {
                        text.push(' ');
                    }
                    if spec.sharp && (i == 0 || spec.space) {
                        text.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        text.push_str(&format!("{b:02x}"));
                    } else {
                        text.push_str(&format!("{b:02X}"));
                    }
                }
                out.push_str(&spec.pad(text, false));
            }
            _ => bad_verb(out, verb, arg),
        },
        Value::Number(n) if !n.is_f64() => {
            let v: i128 = n
                .as_i64()
                .map_or_else(|| i128::from(n.as_u64().unwrap_or(0)), i128::from);
            format_int(out, verb, spec, v, arg);
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let body = match verb {
                'v' | 'g' => format_g(x, spec.precision, false),
                'G' => format_g(x, spec.precision, true),
                'e' | 'E' => format_e(x, spec.precision.unwrap_or(6), verb == 'E'),
                'f' | 'F' => format_f(x, spec.precision.unwrap_or(6)),
                _ => return bad_verb(out, verb, arg),
            };
            let body = match body.strip_prefix('-') {
                Some(rest) => format!("-{rest}"),
                None => format!("{}{body}", spec.sign(false)),
            };
            out.push_str(&spec.pad(body, true));
        }
        Value::Array(_) | Value::Object(_) => composite(out, arg, &mut |out, v| {
            format_arg(out, verb, spec, v, false)
        }),
    }
}

fn format_int(out: &mut String, verb: char, spec: Spec, v: i128, arg: &Value) {
    let negative = v < 0;
    let magnitude = v.unsigned_abs();
    let (digits, prefix) = match verb {
        'v' | 'd' => (magnitude.to_string(), ""),
        'b' => (format!("{magnitude:b}"), if spec.sharp { "0b" } else { "" }),
        'o' => (format!("{magnitude:o}"), if spec.sharp { "0" } else { "" }),
        'O' => (format!("{magnitude:o}"), "0o"),
        'x' => (format!("{magnitude:x}"), if spec.sharp { "0x" } else { "" }),
        'X' => (format!("{magnitude:X}"), if spec.sharp { "0X" } else { "" }),
        'c' | 'q' | 'U' => {
            let c = u32::try_from(v)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let text = match verb {
                'c' => c.to_string(),
                'q' => {
                    let quoted = go_quote(&c.to_string());
                    let inner = &quoted[1..quoted.len() - 1];
                    let inner = if inner == "\\\"" {
                        "\""
                    } else if c == '\'' {
                        "\\'"
                    } else {
                        inner
                    };
                    format!("'{inner}'")
                }
                _ if spec.sharp => format!("U+{:04X} '{c}'", v),
                _ => format!("U+{:04X}", v),
            };
            out.push_str(&spec.pad(text, false));
            return;
        }
        _ => return bad_verb(out, verb, arg),
    };
    let digits = match spec.precision {
        Some(p) if digits.len() < p => "0".repeat(p - digits.len()) + &digits,
        Some(0) if magnitude == 0 => String::new(),
        _ => digits,
    };
    let text = format!("{}{prefix}{digits}", spec.sign(negative));
    let zero_ok = spec.precision.is_none();
    out.push_str(
        &Spec {
            zero: spec.zero && zero_ok,
            ..spec
        }
        .pad(text, true),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.25), "0.25");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.1 + 0.2), "0.30000000000000004");
    }

    #[test]
    fn composite_values_print_like_go() {
        let v = json!({"b": [1, "x", null, 2.5], "a": {"k": true}, "c": ""});
        assert_eq!(to_go_string(&v), "map[a:map[k:true] b:[1 x <nil> 2.5] c:]");
        assert_eq!(to_go_string(&json!([])), "[]");
    }

    #[test]
    fn print_and_println_space_like_go() {
        assert_eq!(sprint(&[json!(1), json!(2), json!("a"), json!(3)]), "1 2a3");
        assert_eq!(sprint(&[json!("a"), json!("b")]), "ab");
        assert_eq!(sprintln(&[json!("a"), json!(1)]), "a 1\n");
        assert_eq!(sprint(&[Value::Null]), "<nil>");
    }

    #[test]
    fn printf_verbs() {
        let p = |f: &str, args: &[Value]| sprintf(f, args);
        assert_eq!(p("%s-%d", &[json!("web"), json!(3)]), "web-3");
        assert_eq!(p("%5s|%-5s|", &[json!("ab"), json!("cd")]), "   ab|cd   |");
        assert_eq!(
            p(
                "%05d %+d %x %X %#x %o %b",
                &[
                    json!(42),
                    json!(7),
                    json!(255),
                    json!(255),
                    json!(255),
                    json!(8),
                    json!(5)
                ]
            ),
            "00042 +7 ff FF 0xff 10 101"
        );
        assert_eq!(
            p(
                "%.2f %e %g %v",
                &[json!(4.56789), json!(1234.5), json!(0.000012), json!(2.0)]
            ),
            "4.57 1.234500e+03 1.2e-05 2"
        );
        assert_eq!(
            p("%q %v %t", &[json!("a\"b\n"), json!([1, 2]), json!(true)]),
            "\"a\\\"b\\n\" [1 2] true"
        );
        assert_eq!(
            p("%c %U %q", &[json!(65), json!(65), json!(97)]),
            "A U+0041 'a'"
        );
        assert_eq!(
            p(
                "%.3s|%8.3f|%-8.2f|",
                &[json!("abcdef"), json!(2.5), json!(-1.005)]
            ),
            "abc|   2.500|-1.00   |"
        );
        assert_eq!(p("100%%", &[]), "100%");
        assert_eq!(p("%s", &[json!(["a", "b"])]), "[a b]");
    }

    #[test]
    fn printf_complains_like_go() {
        let p = |f: &str, args: &[Value]| sprintf(f, args);
        assert_eq!(p("%d", &[json!("x")]), "%!d(string=x)");
        assert_eq!(p("%s", &[json!(5)]), "%!s(int=5)");
        assert_eq!(p("%d", &[json!(1.5)]), "%!d(float64=1.5)");
        assert_eq!(p("%s", &[Value::Null]), "%!s(<nil>)");
        assert_eq!(p("%d %d", &[json!(1)]), "1 %!d(MISSING)");
        assert_eq!(p("%d", &[json!(1), json!("a")]), "1%!(EXTRA string=a)");
        assert_eq!(p("50%", &[]), "50%!(NOVERB)");
    }
}
