//! Runs a parsed template over a JSON value with Go's rules for the data `docker inspect`
//! hands its templates: a missing key is "no value", null is a nil interface, and a pipeline
//! that ends in nil has no value either (so both print `<no value>`).

use std::borrow::Cow;

use serde_json::Value;

use super::funcs;
use super::parse::{Branch, Command, Node, Operand, Pipe};
use super::print;

/// A value during execution: borrowed from the data where possible.
#[derive(Clone, Debug)]
pub(super) enum Val<'a> {
    /// Go's invalid value: a key that is not in the map, or a pipeline that ended in nil.
    Missing,
    Json(Cow<'a, Value>),
}

impl<'a> Val<'a> {
    fn owned(value: Value) -> Self {
        Val::Json(Cow::Owned(value))
    }

    /// Go turns a nil interface that a command returns into no value at all.
    fn settle(self) -> Self {
        match self {
            Val::Json(v) if v.is_null() => Val::Missing,
            other => other,
        }
    }

    /// As a function argument: no value is passed as nil.
    fn into_arg(self) -> Cow<'a, Value> {
        match self {
            Val::Missing => Cow::Owned(Value::Null),
            Val::Json(v) => v,
        }
    }

    fn is_true(&self) -> bool {
        match self {
            Val::Missing => false,
            Val::Json(v) => funcs::truth(v),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// A missing map key is an error (`map has no entry for key "X"`), as with Go's
    /// `missingkey=error`, instead of no value.
    pub missing_key_error: bool,
    /// Table headers: `json`, `split`, `join`, `title`, `lower`, `upper` and `truncate`
    /// return their first argument, as Docker's header functions do.
    pub header: bool,
}

/// An execution error: where, the source of the operand it happened at, and what.
#[derive(Debug)]
pub(super) struct Failure {
    pub pos: usize,
    pub context: String,
    pub message: String,
}

type Result<T> = std::result::Result<T, Failure>;

fn fail(op: &Operand, message: impl Into<String>) -> Failure {
    Failure {
        pos: op.pos(),
        context: op.to_string(),
        message: message.into(),
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'t, 'a> {
    /// Variables in scope, innermost last.
    vars: Vec<(&'t str, Val<'a>)>,
    out: String,
    options: Options,
}

pub(super) fn is_function(name: &str) -> bool {
    funcs::NAMES.contains(&name)
}

pub(super) fn execute(root: &[Node], data: &Value, options: Options) -> Result<String> {
    let dot = if data.is_null() {
        Val::Missing
    } else {
        Val::Json(Cow::Borrowed(data))
    };
    let mut exec = Exec {
        vars: vec![("$", dot.clone())],
        out: String::new(),
        options,
    };
    exec.walk(&dot, root)?;
    Ok(exec.out)
}

/// `recv.name`, keeping the borrow from the data when there is one.
fn member<'a>(recv: &Cow<'a, Value>, name: &str) -> Option<Cow<'a, Value>> {
    match recv {
        Cow::Borrowed(value) => {
            let value: &'a Value = value;
            value.get(name).map(Cow::Borrowed)
        }
        Cow::Owned(value) => value.get(name).cloned().map(Cow::Owned),
    }
}

impl<'t, 'a> Exec<'t, 'a> {
    fn walk(&mut self, dot: &Val<'a>, list: &'t [Node]) -> Result<Flow> {
        for node in list {
            let flow = match node {
                Node::Text(text) => {
                    self.out.push_str(text);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let value = self.pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match &value {
                            Val::Missing => self.out.push_str("<no value>"),
                            Val::Json(v) => print::go_value(&mut self.out, v),
                        }
                    }
                    Flow::Normal
                }
                Node::If(branch) => self.if_or_with(dot, branch, false)?,
                Node::With(branch) => self.if_or_with(dot, branch, true)?,
                Node::Range(branch) => self.range(dot, branch)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn if_or_with(&mut self, dot: &Val<'a>, branch: &'t Branch, with: bool) -> Result<Flow> {
        let scope = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        let flow = if value.is_true() {
            let dot = if with { &value } else { dot };
            self.walk(dot, &branch.list)?
        } else if let Some(list) = &branch.else_list {
            self.walk(dot, list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(scope);
        Ok(flow)
    }

    fn range(&mut self, dot: &Val<'a>, branch: &'t Branch) -> Result<Flow> {
        let scope = self.vars.len();
        let value = self.pipeline(dot, &branch.pipe)?;
        let mut items: Vec<(Value, Val<'a>)> = Vec::new();
        match &value {
            Val::Missing => {}
            Val::Json(Cow::Borrowed(v)) => {
                let v: &'a Value = v;
                match v {
                    Value::Array(a) => items.extend(
                        a.iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), Val::Json(Cow::Borrowed(e)))),
                    ),
                    Value::Object(m) => items.extend(
                        m.iter()
                            .map(|(k, e)| (Value::from(k.as_str()), Val::Json(Cow::Borrowed(e)))),
                    ),
                    other => self.range_scalar(branch, other, &mut items)?,
                }
            }
            Val::Json(Cow::Owned(v)) => match v {
                Value::Array(a) => items.extend(
                    a.iter()
                        .enumerate()
                        .map(|(i, e)| (Value::from(i), Val::owned(e.clone()))),
                ),
                Value::Object(m) => items.extend(
                    m.iter()
                        .map(|(k, e)| (Value::from(k.as_str()), Val::owned(e.clone()))),
                ),
                other => self.range_scalar(branch, other, &mut items)?,
            },
        }
        if items.is_empty() {
            let flow = match &branch.else_list {
                Some(list) => self.walk(dot, list)?,
                None => Flow::Normal,
            };
            self.vars.truncate(scope);
            return Ok(flow);
        }
        let decl = &branch.pipe.decl;
        let mark = self.vars.len();
        for (key, elem) in items {
            // One variable gets the element; two get the index or key, then the element.
            match decl.len() {
                0 => {}
                1 => self.set_range_var(&decl[0], branch.pipe.is_assign, elem.clone()),
                _ => {
                    self.set_range_var(&decl[0], branch.pipe.is_assign, Val::owned(key));
                    self.set_range_var(&decl[1], branch.pipe.is_assign, elem.clone());
                }
            }
            let flow = self.walk(&elem, &branch.list)?;
            self.vars.truncate(mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(scope);
        Ok(Flow::Normal)
    }

    /// `range` over an integer counts from 0; a null ranges over nothing; anything else
    /// cannot be ranged over.
    fn range_scalar(
        &self,
        branch: &Branch,
        value: &Value,
        items: &mut Vec<(Value, Val<'a>)>,
    ) -> Result<()> {
        let failure = |message: String| Failure {
            pos: branch.pipe.pos,
            context: format!("{{{{range {}}}}}", branch.pipe),
            message,
        };
        match value {
            Value::Null => Ok(()),
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                if branch.pipe.decl.len() > 1 {
                    return Err(failure(format!(
                        "can't use {} to iterate over more than one variable",
                        print::to_go_string(value)
                    )));
                }
                let count = n.as_i64().unwrap_or(i64::MAX).max(0);
                items.extend((0..count).map(|i| (Value::from(i), Val::owned(Value::from(i)))));
                Ok(())
            }
            other => Err(failure(format!(
                "range can't iterate over {}",
                print::to_go_string(other)
            ))),
        }
    }

    fn set_range_var(&mut self, name: &'t str, is_assign: bool, value: Val<'a>) {
        if is_assign {
            self.assign(name, value);
        } else {
            // The pipeline pushed this variable; the iteration overwrites it.
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
                slot.1 = value;
            }
        }
    }

    fn assign(&mut self, name: &str, value: Val<'a>) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            slot.1 = value;
        }
    }

    fn variable(&self, op: &Operand, name: &str) -> Result<Val<'a>> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| fail(op, format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, dot: &Val<'a>, pipe: &'t Pipe) -> Result<Val<'a>> {
        let mut value: Option<Val<'a>> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(dot, cmd, value.take())?.settle());
        }
        let value = value.unwrap_or(Val::Missing);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.assign(name, value.clone());
            } else {
                self.vars.push((name, value.clone()));
            }
        }
        Ok(value)
    }

    /// Refuses arguments to something that is not a function.
    fn not_a_function(args: &[Operand], last: &Option<Val<'a>>) -> Result<()> {
        if args.len() > 1 || last.is_some() {
            return Err(fail(
                &args[0],
                format!("can't give argument to non-function {}", args[0]),
            ));
        }
        Ok(())
    }

    /// One command; `last` is the value of the previous command in the pipeline.
    fn command(
        &mut self,
        dot: &Val<'a>,
        cmd: &'t Command,
        last: Option<Val<'a>>,
    ) -> Result<Val<'a>> {
        let first = &cmd.args[0];
        let has_args = cmd.args.len() > 1 || last.is_some();
        match first {
            Operand::Func(_, name) => return self.call(dot, first, name, &cmd.args[1..], last),
            Operand::Field(_, names)
                if names.last().is_some_and(|n| n == "Label")
                    && cmd.args.len() == 2
                    && last.is_none() =>
            {
                return self.label(dot, first, names, &cmd.args[1]);
            }
            Operand::Field(_, names) => {
                return self.fields(first, dot.clone(), names, has_args);
            }
            Operand::Chain(_, node, names) => {
                let recv = self.arg(dot, node)?;
                return self.fields(first, recv, names, has_args);
            }
            Operand::Variable(_, name, names) => {
                let value = self.variable(first, name)?;
                if names.is_empty() {
                    Self::not_a_function(&cmd.args, &last)?;
                    return Ok(value);
                }
                return self.fields(first, value, names, has_args);
            }
            _ => {}
        }
        Self::not_a_function(&cmd.args, &last)?;
        match first {
            Operand::Pipe(pipe) => self.pipeline(dot, pipe),
            Operand::Nil(_) => Err(fail(first, "nil is not a command")),
            other => self.arg(dot, other),
        }
    }

    /// `.Label "key"`: the one method Docker's list rows have (`ps`, `images`, `network ls`,
    /// `volume ls`): the value of that label, read from the row's `Labels`, which is either
    /// `k=v,k2=v2` text (as these rows print it) or an object; "" when it is not set. In
    /// table headers it is the header name.
    fn label(
        &mut self,
        dot: &Val<'a>,
        op: &'t Operand,
        names: &[String],
        key: &'t Operand,
    ) -> Result<Val<'a>> {
        if self.options.header {
            return Ok(Val::owned(Value::String("LABEL".into())));
        }
        let key = match self.arg(dot, key)?.into_arg().into_owned() {
            Value::String(k) => k,
            other => {
                return Err(fail(
                    op,
                    format!(
                        "wrong type for value; expected string; got {}",
                        print::type_name(&other)
                    ),
                ))
            }
        };
        let recv = self.fields(op, dot.clone(), &names[..names.len() - 1], false)?;
        let labels = match recv {
            Val::Json(v) => member(&v, "Labels").map(Cow::into_owned),
            Val::Missing => None,
        };
        let value = match labels {
            Some(Value::String(text)) => text
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string()),
            Some(Value::Object(map)) => map.get(&key).and_then(Value::as_str).map(String::from),
            _ => None,
        };
        Ok(Val::owned(Value::String(value.unwrap_or_default())))
    }

    /// The value of an operand used as an argument.
    fn arg(&mut self, dot: &Val<'a>, op: &'t Operand) -> Result<Val<'a>> {
        Ok(match op {
            Operand::Dot(_) => dot.clone(),
            Operand::Nil(_) => Val::owned(Value::Null),
            Operand::Bool(_, b) => Val::owned(Value::Bool(*b)),
            Operand::Number(_, _, v) => Val::owned(v.clone()),
            Operand::Str(_, _, s) => Val::owned(Value::String(s.clone())),
            Operand::Field(_, names) => self.fields(op, dot.clone(), names, false)?,
            Operand::Variable(_, name, names) => {
                let value = self.variable(op, name)?;
                if names.is_empty() {
                    value
                } else {
                    self.fields(op, value, names, false)?
                }
            }
            Operand::Pipe(pipe) => self.pipeline(dot, pipe)?,
            Operand::Func(_, name) => self.call(dot, op, name, &[], None)?,
            Operand::Chain(_, node, names) => {
                let recv = self.arg(dot, node)?;
                self.fields(op, recv, names, false)?
            }
        })
    }

    /// `.A.B.C` from `recv`. Only the last name can be given arguments (and a JSON value
    /// has no methods, so that is an error).
    fn fields(
        &self,
        op: &Operand,
        mut recv: Val<'a>,
        names: &[String],
        has_args: bool,
    ) -> Result<Val<'a>> {
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            recv = match recv {
                Val::Missing if self.options.missing_key_error => {
                    return Err(fail(op, format!("nil data; no entry for key {name:?}")))
                }
                Val::Missing => Val::Missing,
                Val::Json(value) => match value.as_ref() {
                    Value::Object(_) => {
                        if last && has_args {
                            return Err(fail(
                                op,
                                format!("{name} is not a method but has arguments"),
                            ));
                        }
                        match member(&value, name) {
                            Some(v) => Val::Json(v),
                            None if self.options.missing_key_error => {
                                return Err(fail(op, format!("map has no entry for key {name:?}")))
                            }
                            None => Val::Missing,
                        }
                    }
                    Value::Null => {
                        return Err(fail(
                            op,
                            format!("nil pointer evaluating interface {{}}.{name}"),
                        ))
                    }
                    other => {
                        return Err(fail(
                            op,
                            format!(
                                "can't evaluate field {name} in type {}",
                                print::type_name(other)
                            ),
                        ))
                    }
                },
            };
        }
        Ok(recv)
    }

    fn call(
        &mut self,
        dot: &Val<'a>,
        op: &'t Operand,
        name: &str,
        args: &'t [Operand],
        last: Option<Val<'a>>,
    ) -> Result<Val<'a>> {
        if name == "and" || name == "or" {
            // Evaluated left to right, stopping at the first false (and) or true (or) value,
            // which is the result; otherwise the result is the last value.
            if args.is_empty() && last.is_none() {
                return Err(fail(
                    op,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let stop_on = name == "or";
            let mut value = Val::Missing;
            for arg in args {
                value = self.arg(dot, arg)?;
                if value.is_true() == stop_on {
                    return Ok(value);
                }
            }
            return Ok(last.unwrap_or(value));
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.arg(dot, arg)?.into_arg());
        }
        if let Some(last) = last {
            values.push(last.into_arg());
        }
        funcs::call(name, &values, self.options.header)
            .map(Val::owned)
            .map_err(|message| fail(op, message))
    }
}
