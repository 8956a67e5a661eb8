//! Splits a template into text and the tokens of its actions.
//!
//! Trim markers are applied here: `{{- ` drops the white space before the action and ` -}}`
//! the white space after it, so the parser only sees the text that will be printed.
//! Comments (`{{/* … */}}`) are dropped here too.

use super::SyntaxError;

/// The words that start or end a control structure, and the two that name constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            "define" => Keyword::Define,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "if" => Keyword::If,
            "range" => Keyword::Range,
            "template" => Keyword::Template,
            "with" => Keyword::With,
            _ => return None,
        })
    }

    pub(super) fn word(self) -> &'static str {
        match self {
            Keyword::Block => "block",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Define => "define",
            Keyword::Else => "else",
            Keyword::End => "end",
            Keyword::If => "if",
            Keyword::Range => "range",
            Keyword::Template => "template",
            Keyword::With => "with",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// Literal text between actions, already trimmed where a marker asked for it.
    Text(String),
    LeftDelim,
    RightDelim,
    /// A run of white space inside an action (it separates arguments).
    Space,
    /// `.Name`, without the dot.
    Field(String),
    /// `$` or `$name`, with the dollar sign.
    Variable(String),
    /// A function name.
    Ident(String),
    Dot,
    /// A quoted or raw string: the source text and its value.
    Str(String, String),
    /// A character constant: the source text and its code point.
    Char(String, u32),
    Number(String),
    Bool(bool),
    Nil,
    Keyword(Keyword),
    Pipe,
    LeftParen,
    RightParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    Comma,
    Eof,
}

impl Tok {
    /// How a parse error names the token, close to Go's wording (`"}}"`, `<end>`, `EOF`).
    pub(super) fn describe(&self) -> String {
        let quoted = |s: &str| {
            if s.chars().count() > 10 {
                format!("{:?}...", s.chars().take(10).collect::<String>())
            } else {
                format!("{s:?}")
            }
        };
        match self {
            Tok::Text(s) => quoted(s),
            Tok::LeftDelim => quoted("{{"),
            Tok::RightDelim => quoted("}}"),
            Tok::Space => quoted(" "),
            Tok::Field(f) => quoted(&format!(".{f}")),
            Tok::Variable(v) | Tok::Ident(v) | Tok::Number(v) => quoted(v),
            Tok::Dot => quoted("."),
            Tok::Str(raw, _) | Tok::Char(raw, _) => quoted(raw),
            Tok::Bool(b) => format!("<{b}>"),
            Tok::Nil => "<nil>".into(),
            Tok::Keyword(k) => format!("<{}>", k.word()),
            Tok::Pipe => quoted("|"),
            Tok::LeftParen => quoted("("),
            Tok::RightParen => quoted(")"),
            Tok::Declare => quoted(":="),
            Tok::Assign => quoted("="),
            Tok::Comma => quoted(","),
            Tok::Eof => "EOF".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub tok: Tok,
    /// Byte offset in the template source.
    pub pos: usize,
}

/// The white space that trim markers remove and that separates arguments.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// `{{- `: a minus followed by one white-space character.
fn left_trim_at(rest: &str) -> bool {
    let mut chars = rest.chars();
    chars.next() == Some('-') && chars.next().is_some_and(is_space)
}

/// Where the action ends at `rest`: `Some(len, trims)` for ` -}}` (4 bytes, trims) or `}}`.
fn right_delim_at(rest: &str) -> Option<(usize, bool)> {
    let mut chars = rest.chars();
    if chars.next().is_some_and(is_space) && rest[1..].starts_with("-}}") {
        return Some((4, true));
    }
    rest.starts_with("}}").then_some((2, false))
}

/// `U+0040 '@'`, as Go's `%#U` names a character.
fn describe_char(c: char) -> String {
    format!("U+{:04X} '{c}'", c as u32)
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    tokens: Vec<Token>,
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
    };
    let mut trim_text_start = false;
    loop {
        let start = lexer.pos;
        let action = src[start..].find("{{").map(|i| start + i);
        let text_end = action.unwrap_or(src.len());
        let mut text = &src[start..text_end];
        if trim_text_start {
            text = text.trim_start_matches(is_space);
        }
        let left_trim = action.is_some_and(|a| left_trim_at(&src[a + 2..]));
        if left_trim {
            text = text.trim_end_matches(is_space);
        }
        if !text.is_empty() {
            lexer.push(Tok::Text(text.to_string()), start);
        }
        let Some(open) = action else { break };
        lexer.pos = open + 2 + if left_trim { 2 } else { 0 };
        trim_text_start = if src[lexer.pos..].starts_with("/*") {
            lexer.comment(open)?
        } else {
            lexer.push(Tok::LeftDelim, open);
            lexer.inside_action()?
        };
    }
    lexer.push(Tok::Eof, src.len());
    Ok(lexer.tokens)
}

impl<'s> Lexer<'s> {
    fn push(&mut self, tok: Tok, pos: usize) {
        self.tokens.push(Token { tok, pos });
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error(&self, pos: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            pos,
            message: message.into(),
        }
    }

    /// Skips `/* … */` and the closing delimiter; returns whether that delimiter trims.
    fn comment(&mut self, open: usize) -> Result<bool, SyntaxError> {
        let body = self.pos + 2;
        let close = self.src[body..]
            .find("*/")
            .ok_or_else(|| self.error(open, "unclosed comment"))?;
        self.pos = body + close + 2;
        match right_delim_at(self.rest()) {
            Some((len, trims)) => {
                self.pos += len;
                Ok(trims)
            }
            None => Err(self.error(self.pos, "comment ends before closing delimiter")),
        }
    }

    /// Tokens up to and including the closing delimiter; returns whether it trims.
    fn inside_action(&mut self) -> Result<bool, SyntaxError> {
        let mut paren_depth = 0usize;
        loop {
            if let Some((len, trims)) = right_delim_at(self.rest()) {
                if paren_depth > 0 {
                    return Err(self.error(self.pos, "unclosed left paren"));
                }
                self.push(Tok::RightDelim, self.pos);
                self.pos += len;
                return Ok(trims);
            }
            let start = self.pos;
            let Some(c) = self.peek_char() else {
                return Err(self.error(start, "unclosed action"));
            };
            match c {
                c if is_space(c) => {
                    // A run of spaces, stopping before a ` -}}` so the delimiter sees its space.
                    while let Some(c) = self.peek_char() {
                        if !is_space(c) || right_delim_at(self.rest()).is_some() {
                            break;
                        }
                        self.pos += c.len_utf8();
                    }
                    if self.pos > start {
                        self.push(Tok::Space, start);
                    }
                }
                '=' => self.single(Tok::Assign),
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err(self.error(start, "expected :="));
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                '|' => self.single(Tok::Pipe),
                ',' => self.single(Tok::Comma),
                '(' => {
                    paren_depth += 1;
                    self.single(Tok::LeftParen);
                }
                ')' => {
                    if paren_depth == 0 {
                        return Err(self.error(start, "unexpected right paren"));
                    }
                    paren_depth -= 1;
                    self.single(Tok::RightParen);
                }
                '"' => self.quoted()?,
                '`' => self.raw_quoted()?,
                '\'' => self.char_constant()?,
                '$' => {
                    self.pos += 1;
                    let name = self.word();
                    self.terminator()?;
                    self.push(Tok::Variable(format!("${name}")), start);
                }
                '.' if !self.src[start + 1..].starts_with(|d: char| d.is_ascii_digit()) => {
                    self.pos += 1;
                    let name = self.word();
                    self.terminator()?;
                    let tok = if name.is_empty() {
                        Tok::Dot
                    } else {
                        Tok::Field(name.to_string())
                    };
                    self.push(tok, start);
                }
                '.' | '+' | '-' | '0'..='9' => self.number()?,
                c if is_alnum(c) => {
                    let word = self.word();
                    self.terminator()?;
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match Keyword::from_word(w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w.to_string()),
                        },
                    };
                    self.push(tok, start);
                }
                c => {
                    return Err(self.error(
                        start,
                        format!("unrecognized character in action: {}", describe_char(c)),
                    ))
                }
            }
        }
    }

    fn single(&mut self, tok: Tok) {
        let start = self.pos;
        self.pos += 1;
        self.push(tok, start);
    }

    /// Letters, digits and underscores from the current position.
    fn word(&mut self) -> &'s str {
        let start = self.pos;
        while let Some(c) = self.peek_char().filter(|&c| is_alnum(c)) {
            self.pos += c.len_utf8();
        }
        &self.src[start..self.pos]
    }

    /// A name must be followed by something that can end it.
    fn terminator(&self) -> Result<(), SyntaxError> {
        match self.peek_char() {
            None => Ok(()),
            Some(c) if is_space(c) || ".,|:()".contains(c) => Ok(()),
            Some(_) if right_delim_at(self.rest()).is_some() => Ok(()),
            Some(c) => Err(self.error(self.pos, format!("bad character {}", describe_char(c)))),
        }
    }

    /// The end (exclusive) of the quoted token starting at `self.pos` and closed by
    /// `quote`, stepping over backslash escapes; a newline or the end of the text first is
    /// the error `unterminated`.
    fn scan_quoted(&self, quote: char, unterminated: &str) -> Result<usize, SyntaxError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().skip(1);
        loop {
            match chars.next() {
                Some((_, '\\')) => {
                    if let Some((_, '\n')) | None = chars.next() {
                        return Err(self.error(start, unterminated));
                    }
                }
                Some((_, '\n')) | None => return Err(self.error(start, unterminated)),
                Some((i, c)) if c == quote => return Ok(start + i + 1),
                Some(_) => {}
            }
        }
    }

    fn quoted(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let end = self.scan_quoted('"', "unterminated quoted string")?;
        let raw = &self.src[start..end];
        let value = unquote(&raw[1..raw.len() - 1], '"').map_err(|e| self.error(start, e))?;
        self.push(Tok::Str(raw.to_string(), value), start);
        self.pos = end;
        Ok(())
    }

    fn raw_quoted(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let close = self.src[start + 1..]
            .find('`')
            .ok_or_else(|| self.error(start, "unterminated raw quoted string"))?;
        let end = start + 1 + close + 1;
        let raw = &self.src[start..end];
        // Go drops carriage returns from raw strings.
        let value = raw[1..raw.len() - 1].replace('\r', "");
        self.push(Tok::Str(raw.to_string(), value), start);
        self.pos = end;
        Ok(())
    }

    fn char_constant(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let end = self.scan_quoted('\'', "unterminated character constant")?;
        let raw = &self.src[start..end];
        let value = unquote(&raw[1..raw.len() - 1], '\'').map_err(|e| self.error(start, e))?;
        let mut cs = value.chars();
        let (Some(c), None) = (cs.next(), cs.next()) else {
            return Err(self.error(start, format!("malformed character constant: {raw}")));
        };
        self.push(Tok::Char(raw.to_string(), c as u32), start);
        self.pos = end;
        Ok(())
    }

    /// Go's number syntax: sign, `0x`/`0o`/`0b` prefixes, underscores, fraction, exponent.
    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let accept = |lexer: &mut Self, set: &str| {
            if let Some(c) = lexer.peek_char().filter(|c| set.contains(*c)) {
                lexer.pos += c.len_utf8();
                true
            } else {
                false
            }
        };
        let accept_run = |lexer: &mut Self, set: &str| while accept(lexer, set) {};
        accept(self, "+-");
        let mut digits = "0123456789_";
        let mut decimal = true;
        if accept(self, "0") {
            if accept(self, "xX") {
                digits = "0123456789abcdefABCDEF_";
                decimal = false;
            } else if accept(self, "oO") {
                digits = "01234567_";
                decimal = false;
            } else if accept(self, "bB") {
                digits = "01_";
                decimal = false;
            }
        }
        accept_run(self, digits);
        if accept(self, ".") {
            accept_run(self, digits);
        }
        if decimal && accept(self, "eE") {
            accept(self, "+-");
            accept_run(self, "0123456789_");
        }
        accept(self, "i");
        if let Some(c) = self.peek_char().filter(|&c| is_alnum(c)) {
            self.pos += c.len_utf8();
            return Err(self.error(
                start,
                format!("bad number syntax: {:?}", &self.src[start..self.pos]),
            ));
        }
        self.push(Tok::Number(self.src[start..self.pos].to_string()), start);
        Ok(())
    }
}

/// The value of a Go quoted string or character literal body (between its quotes).
fn unquote(body: &str, quote: char) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = body.chars();
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Result<u32, String> {
        let digits: String = chars.take(n).collect();
        if digits.len() != n {
            return Err(format!("invalid escape in {quote}{body}{quote}"));
        }
        u32::from_str_radix(&digits, 16).map_err(|_| format!("invalid escape \\{digits}…"))
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(format!("invalid escape at the end of {quote}{body}{quote}"));
        };
        let code = match e {
            'a' => 7,
            'b' => 8,
            'f' => 12,
            'n' => 10,
            'r' => 13,
            't' => 9,
            'v' => 11,
            '\\' => '\\' as u32,
            '\'' | '"' if e == quote => e as u32,
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            'U' => hex(&mut chars, 8)?,
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let digits = format!("{e}{rest}");
                match u32::from_str_radix(&digits, 8) {
                    Ok(v) if digits.len() == 3 && v <= 255 => v,
                    _ => return Err(format!("invalid octal escape \\{digits}")),
                }
            }
            other => return Err(format!("unknown escape sequence \\{other}")),
        };
        let c = char::from_u32(code).ok_or_else(|| format!("invalid code point {code:#x}"))?;
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn actions_split_into_tokens() {
        assert_eq!(
            toks("a {{.X.Y | printf \"%d\" $v}}"),
            vec![
                Tok::Text("a ".into()),
                Tok::LeftDelim,
                Tok::Field("X".into()),
                Tok::Field("Y".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("printf".into()),
                Tok::Space,
                Tok::Str("\"%d\"".into(), "%d".into()),
                Tok::Space,
                Tok::Variable("$v".into()),
                Tok::RightDelim,
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            toks("a  {{- .X -}}  b {{/* c */ -}} d"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("X".into()),
                Tok::RightDelim,
                Tok::Text("b ".into()),
                Tok::Text("d".into()),
                Tok::Eof,
            ]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(toks("{{-3}}")[1], Tok::Number("-3".into()));
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks(r#"{{"a\tb\x41\u00e9"}}"#)[1],
            Tok::Str(r#""a\tb\x41\u00e9""#.into(), "a\tbAé".into())
        );
        assert_eq!(
            toks("{{`a\\n`}}")[1],
            Tok::Str("`a\\n`".into(), "a\\n".into())
        );
        assert_eq!(toks("{{'x'}}")[1], Tok::Char("'x'".into(), 'x' as u32));
        assert_eq!(toks("{{0x1F}}")[1], Tok::Number("0x1F".into()));
        assert_eq!(toks("{{1.5e3}}")[1], Tok::Number("1.5e3".into()));
        assert_eq!(toks("{{true}}")[1], Tok::Bool(true));
    }

    #[test]
    fn lexical_errors() {
        let msg = |src: &str| lex(src).unwrap_err().message;
        assert_eq!(msg("{{.X"), "unclosed action");
        assert_eq!(msg("{{(.X}}"), "unclosed left paren");
        assert_eq!(msg("{{.X)}}"), "unexpected right paren");
        assert_eq!(msg("{{\"abc}}"), "unterminated quoted string");
        assert_eq!(msg("{{@}}"), "unrecognized character in action: U+0040 '@'");
        assert_eq!(msg("{{3x}}"), "bad number syntax: \"3x\"");
        assert_eq!(msg("{{/* x }}"), "unclosed comment");
        assert_eq!(msg("{{\"\\q\"}}"), "unknown escape sequence \\q");
    }
}
