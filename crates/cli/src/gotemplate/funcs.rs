//! The functions a `--format` template can call: Docker's (`json`, `split`, `join`, `title`,
//! `lower`, `upper`, `pad`, `truncate`) and Go's built-ins `index`, `len`, `print`,
//! `printf`, `println`, `not`, `and`, `or` (evaluated in the executor, they short-circuit),
//! `eq`, `ne`, `lt`, `le`, `gt`, `ge`.

use std::borrow::Cow;

use serde_json::Value;

use super::print::{self, type_name};

pub(super) const NAMES: &[&str] = &[
    "and", "eq", "ge", "gt", "index", "join", "json", "le", "len", "lower", "lt", "ne", "not",
    "or", "pad", "print", "printf", "println", "split", "title", "truncate", "upper",
];

/// Go's truth: false, 0, "", null and empty arrays and maps are false.
pub(super) fn truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn want_string(value: &Value) -> Result<&str, String> {
    match value {
        Value::String(s) => Ok(s),
        Value::Null => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            type_name(other)
        )),
    }
}

fn want_int(value: &Value) -> Result<i64, String> {
    let wrong = || {
        format!(
            "wrong type for value; expected int; got {}",
            type_name(value)
        )
    };
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            // A float constant with no fraction, such as 2.0, is also an int constant.
            None => n
                .as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9e15)
                .map(|x| x as i64)
                .ok_or_else(wrong),
        },
        Value::Null => Err("invalid value; expected int".into()),
        _ => Err(wrong()),
    }
}

/// `join` takes a list of strings (a JSON array whose items are all strings).
fn want_strings(value: &Value) -> Result<Vec<&str>, String> {
    let wrong = |got: &str| format!("wrong type for value; expected []string; got {got}");
    match value {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(|| wrong("[]interface {}")))
            .collect(),
        Value::Null => Err("invalid value; expected []string".into()),
        other => Err(wrong(type_name(other))),
    }
}

fn arity(name: &str, args: &[Cow<'_, Value>], want: usize) -> Result<(), String> {
    if args.len() == want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        ))
    }
}

fn at_least(name: &str, args: &[Cow<'_, Value>], want: usize) -> Result<(), String> {
    if args.len() >= want {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want at least {want} got {}",
            args.len()
        ))
    }
}

/// Calls a function other than `and`/`or`. `header`: Docker's table-header variants, which
/// return their first argument so the column title stays as it is.
pub(super) fn call(name: &str, args: &[Cow<'_, Value>], header: bool) -> Result<Value, String> {
    let calling = |e: String| format!("error calling {name}: {e}");
    if header {
        let count = match name {
            "json" | "title" | "lower" | "upper" => Some(1),
            "split" | "join" | "truncate" => Some(2),
            _ => None,
        };
        if let Some(count) = count {
            arity(name, args, count)?;
            return Ok(args[0].as_ref().clone());
        }
    }
    let value = match name {
        "json" => {
            arity(name, args, 1)?;
            Value::String(json(&args[0]))
        }
        "split" => {
            arity(name, args, 2)?;
            let (s, sep) = (want_string(&args[0])?, want_string(&args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.to_string())).collect()
            };
            Value::Array(parts)
        }
        "join" => {
            arity(name, args, 2)?;
            let items = want_strings(&args[0])?;
            Value::String(items.join(want_string(&args[1])?))
        }
        "title" => {
            arity(name, args, 1)?;
            Value::String(title(want_string(&args[0])?))
        }
        "lower" => {
            arity(name, args, 1)?;
            Value::String(want_string(&args[0])?.to_lowercase())
        }
        "upper" => {
            arity(name, args, 1)?;
            Value::String(want_string(&args[0])?.to_uppercase())
        }
        "pad" => {
            arity(name, args, 3)?;
            let s = want_string(&args[0])?;
            let (before, after) = (want_int(&args[1])?, want_int(&args[2])?);
            if s.is_empty() {
                Value::String(String::new())
            } else {
                let spaces = |n: i64| {
                    usize::try_from(n)
                        .map(|n| " ".repeat(n))
                        .map_err(|_| calling("strings: negative Repeat count".into()))
                };
                Value::String(format!("{}{s}{}", spaces(before)?, spaces(after)?))
            }
        }
        "truncate" => {
            arity(name, args, 2)?;
            let s = want_string(&args[0])?;
            let length = want_int(&args[1])?;
            let length = usize::try_from(length)
                .map_err(|_| calling(format!("negative length {length}")))?;
            Value::String(s.chars().take(length).collect())
        }
        "index" => {
            at_least(name, args, 1)?;
            index(&args[0], &args[1..]).map_err(calling)?
        }
        "len" => {
            arity(name, args, 1)?;
            let n = match args[0].as_ref() {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => return Err(calling("len of nil pointer".into())),
                other => return Err(calling(format!("len of type {}", type_name(other)))),
            };
            Value::from(n)
        }
        "print" | "println" => {
            let values: Vec<Value> = args.iter().map(|a| a.as_ref().clone()).collect();
            Value::String(if name == "print" {
                print::sprint(&values)
            } else {
                print::sprintln(&values)
            })
        }
        "printf" => {
            at_least(name, args, 1)?;
            let format = want_string(&args[0])?;
            let values: Vec<Value> = args[1..].iter().map(|a| a.as_ref().clone()).collect();
            Value::String(print::sprintf(format, &values))
        }
        "not" => {
            arity(name, args, 1)?;
            Value::Bool(!truth(&args[0]))
        }
        "eq" => {
            at_least(name, args, 1)?;
            if args.len() == 1 {
                return Err(calling("missing argument for comparison".into()));
            }
            let mut any = false;
            for other in &args[1..] {
                if equal(&args[0], other).map_err(calling)? {
                    any = true;
                    break;
                }
            }
            Value::Bool(any)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, args, 2)?;
            let (a, b) = (args[0].as_ref(), args[1].as_ref());
            let result = match name {
                "ne" => equal(a, b).map(|eq| !eq),
                "lt" => less(a, b),
                "le" => less(a, b).and_then(|lt| if lt { Ok(true) } else { equal(a, b) }),
                "gt" => less(a, b).and_then(|lt| {
                    if lt {
                        Ok(false)
                    } else {
                        equal(a, b).map(|eq| !eq)
                    }
                }),
                _ => less(a, b).map(|lt| !lt),
            }
            .map_err(calling)?;
            Value::Bool(result)
        }
        other => return Err(format!("function {other:?} not defined")),
    };
    Ok(value)
}

/// Docker's `json`: compact JSON without HTML escaping (Go still escapes U+2028 and U+2029).
fn json(value: &Value) -> String {
    serde_json::to_string(value)
        .expect("JSON values serialize")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's `strings.Title`: upper-cases each letter that follows a separator.
fn title(s: &str) -> String {
    let separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if separator(prev) {
                let mut upper = c.to_uppercase();
                match (upper.next(), upper.next()) {
                    (Some(u), None) => u,
                    _ => c,
                }
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

fn index(item: &Value, keys: &[Cow<'_, Value>]) -> Result<Value, String> {
    if item.is_null() {
        return Err("index of untyped nil".into());
    }
    let mut current = Cow::Borrowed(item);
    for key in keys {
        let key = key.as_ref();
        let next = match current.as_ref() {
            Value::Null => return Err("index of nil pointer".into()),
            Value::Array(items) => items[position(key, items.len())?].clone(),
            Value::String(s) => Value::from(s.as_bytes()[position(key, s.len())?]),
            Value::Object(map) => match key {
                Value::String(k) => map.get(k).cloned().unwrap_or(Value::Null),
                other => {
                    return Err(format!(
                        "value has type {}; should be string",
                        type_name(other)
                    ))
                }
            },
            other => return Err(format!("can't index item of type {}", type_name(other))),
        };
        current = Cow::Owned(next);
    }
    Ok(current.into_owned())
}

fn position(key: &Value, len: usize) -> Result<usize, String> {
    match key {
        Value::Number(n) if !n.is_f64() => {
            let i = n.as_i64().unwrap_or(i64::MAX);
            usize::try_from(i)
                .ok()
                .filter(|&i| i < len)
                .ok_or_else(|| format!("index out of range: {i}"))
        }
        Value::Null => Err("cannot index slice/array with nil".into()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            type_name(other)
        )),
    }
}

/// The kinds Go's comparison functions know.
enum Basic<'v> {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'v str),
    Other,
}

fn basic(value: &Value) -> Basic<'_> {
    match value {
        Value::Null => Basic::Nil,
        Value::Bool(b) => Basic::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Basic::Int(i.into()),
            (None, Some(u)) => Basic::Int(u.into()),
            _ => Basic::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Basic::Str(s),
        Value::Array(_) | Value::Object(_) => Basic::Other,
    }
}

/// `eq`. Integers and floats compare by value (Go would refuse to compare an int constant
/// with a float64, but JSON does not say which a number is).
fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (basic(a), basic(b)) {
        (Basic::Bool(x), Basic::Bool(y)) => x == y,
        (Basic::Int(x), Basic::Int(y)) => x == y,
        (Basic::Float(x), Basic::Float(y)) => x == y,
        (Basic::Int(x), Basic::Float(y)) | (Basic::Float(y), Basic::Int(x)) => x as f64 == y,
        (Basic::Str(x), Basic::Str(y)) => x == y,
        (Basic::Nil, Basic::Nil) => true,
        (Basic::Nil, _) | (_, Basic::Nil) => false,
        (Basic::Other, Basic::Other) => {
            return Err(format!(
                "non-comparable types {}: {}, {}: {}",
                print::to_go_string(a),
                type_name(a),
                type_name(b),
                print::to_go_string(b)
            ))
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

/// `lt`: numbers and strings only.
fn less(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (basic(a), basic(b)) {
        (Basic::Int(x), Basic::Int(y)) => x < y,
        (Basic::Float(x), Basic::Float(y)) => x < y,
        (Basic::Int(x), Basic::Float(y)) => (x as f64) < y,
        (Basic::Float(x), Basic::Int(y)) => x < y as f64,
        (Basic::Str(x), Basic::Str(y)) => x < y,
        (Basic::Nil | Basic::Bool(_) | Basic::Other, _)
        | (_, Basic::Nil | Basic::Bool(_) | Basic::Other) => {
            return Err("invalid type for comparison".into())
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}
