//! Go's text/template for `--format`, over JSON values.
//!
//! Docker's `--format` and `inspect -f` take Go templates. This is a parser and evaluator for
//! that language, written from its documentation, running over the JSON objects Coracle
//! prints:
//!
//! - text and actions, `{{- ` / ` -}}` trim markers, `{{/* comments */}}`;
//! - fields `.A.B`, `.`, variables `$x := …`, `$x = …`, `$`, `$x.A`, literals (strings,
//!   raw strings, characters, numbers, `true`, `false`, `nil`), parentheses, `(…).A`, and
//!   pipelines `a | b` (each stage gets the previous value as its last argument);
//! - `if`/`else if`/`else`, `with`/`else with`/`else`, `range` over arrays, maps (in key
//!   order), integers, with `$i, $v :=`, `{{else}}`, `{{break}}`, `{{continue}}`;
//! - Docker's functions `json split join title lower upper pad truncate` and Go's built-ins
//!   `index len print printf println not and or eq ne lt le gt ge`.
//!
//! Values print as Go prints JSON decoded into `interface{}` (see [`print`]); a missing map
//! key and null print `<no value>`. Errors read like Go's: `template: NAME:LINE: function
//! "foo" not defined` when parsing, `template: NAME:LINE:COL: executing "NAME" at <.A.B>:
//! can't evaluate field B in type string` when running.
//!
//! Not supported: named templates (`define`, `template`, `block`), Go's `html`, `js`,
//! `urlquery`, `slice` and `call`, methods (a JSON value has none).

mod exec;
mod funcs;
mod lex;
mod parse;
mod print;

use std::fmt;

use serde_json::Value;

pub use exec::Options;
pub(crate) use print::go_g;

/// A template that failed to parse or to run, with Go's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// A syntax error at a byte offset of the source.
#[derive(Debug)]
struct SyntaxError {
    pos: usize,
    message: String,
}

/// A parsed template, to run over many values.
#[derive(Debug)]
pub struct Template {
    name: String,
    source: String,
    root: Vec<parse::Node>,
}

/// 1-based line of a byte offset, and the offset within that line (Go counts from 0 on the
/// first line and from the newline on later ones).
fn line_col(source: &str, pos: usize) -> (usize, usize) {
    let before = &source[..pos.min(source.len())];
    let line = 1 + before.matches('\n').count();
    let col = match before.rfind('\n') {
        Some(nl) => pos - (nl + 1),
        None => pos,
    };
    (line, col)
}

impl Template {
    /// Parses `source`; `name` appears in error messages (Docker's templates have the empty
    /// name, so its errors start `template: :1:`).
    pub fn parse(name: &str, source: &str) -> Result<Template, Error> {
        let syntax = |e: SyntaxError| {
            let (line, _) = line_col(source, e.pos);
            Error(format!("template: {name}:{line}: {}", e.message))
        };
        let tokens = lex::lex(source).map_err(syntax)?;
        let root = parse::parse(tokens).map_err(syntax)?;
        Ok(Template {
            name: name.to_string(),
            source: source.to_string(),
            root,
        })
    }

    /// Runs the template over `data` with Go's default options: a missing key is no value.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        self.execute_with(data, Options::default())
    }

    pub fn execute_with(&self, data: &Value, options: Options) -> Result<String, Error> {
        exec::execute(&self.root, data, options).map_err(|f| {
            let (line, col) = line_col(&self.source, f.pos);
            // Go shows at most 20 bytes of the operand.
            let context = if f.context.chars().count() > 20 {
                format!("{}...", f.context.chars().take(20).collect::<String>())
            } else {
                f.context
            };
            Error(format!(
                "template: {name}:{line}:{col}: executing {name:?} at <{context}>: {}",
                f.message,
                name = self.name
            ))
        })
    }
}

#[cfg(test)]
mod tests;
