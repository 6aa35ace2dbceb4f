//! The commands of the manager's convenience methods, shared by [`crate::manager::Redis`]
//! and [`crate::pipeline::Pipeline`], and how each one's reply is shaped.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use redis_ssot::redis::{self, Cmd, Value};

use crate::bridge::ToPython;
use crate::value::{convert, to_arg, to_args};

/// How a reply becomes a Python value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// As [`convert`] does.
    Raw,
    /// `OK` or a non-zero integer is `True`; nil or zero is `False` (SET NX, EXPIRE).
    Bool,
    /// A field/value list (RESP2) or a map (RESP3) as a dict.
    Dict,
}

/// A reply and how to shape it, converted once the GIL is held.
pub(crate) fn reply(value: Value, shape: Shape, decode: bool) -> ToPython<(Value, Shape, bool)> {
    ToPython((value, shape, decode), |py, (value, shape, decode)| {
        self::shape(py, value, shape, decode)
    })
}

pub(crate) fn shape(
    py: Python<'_>,
    value: Value,
    shape: Shape,
    decode: bool,
) -> PyResult<Bound<'_, PyAny>> {
    match (shape, value) {
        (Shape::Bool, Value::Okay | Value::SimpleString(_)) => {
            Ok(true.into_pyobject(py)?.to_owned().into_any())
        }
        (Shape::Bool, Value::Nil) => Ok(false.into_pyobject(py)?.to_owned().into_any()),
        (Shape::Bool, Value::Int(n)) => Ok((n != 0).into_pyobject(py)?.to_owned().into_any()),
        (Shape::Dict, Value::Array(items)) => {
            let dict = PyDict::new(py);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                dict.set_item(convert(py, k, decode)?, convert(py, v, decode)?)?;
            }
            Ok(dict.into_any())
        }
        (_, value) => convert(py, value, decode),
    }
}

fn cmd(name: &str) -> Cmd {
    redis::cmd(name)
}

pub(crate) fn get(key: &Bound<'_, PyAny>) -> PyResult<(Cmd, Shape)> {
    Ok((cmd("GET").arg(to_arg(key)?).clone(), Shape::Raw))
}

pub(crate) fn set(
    key: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
    ex: Option<u64>,
    px: Option<u64>,
    nx: bool,
    xx: bool,
) -> PyResult<(Cmd, Shape)> {
    if nx && xx {
        return Err(PyValueError::new_err("nx and xx exclude each other"));
    }
    if ex.is_some() && px.is_some() {
        return Err(PyValueError::new_err("give ex or px, not both"));
    }
    let mut c = cmd("SET");
    c.arg(to_arg(key)?).arg(to_arg(value)?);
    if let Some(ex) = ex {
        c.arg("EX").arg(ex);
    }
    if let Some(px) = px {
        c.arg("PX").arg(px);
    }
    if nx {
        c.arg("NX");
    }
    if xx {
        c.arg("XX");
    }
    Ok((c, Shape::Bool))
}

pub(crate) fn keys(name: &str, keys: &Bound<'_, PyTuple>) -> PyResult<(Cmd, Shape)> {
    if keys.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{name} needs at least one key"
        )));
    }
    Ok((cmd(name).arg(to_args(keys)?).clone(), Shape::Raw))
}

pub(crate) fn expire(key: &Bound<'_, PyAny>, seconds: u64) -> PyResult<(Cmd, Shape)> {
    Ok((
        cmd("EXPIRE").arg(to_arg(key)?).arg(seconds).clone(),
        Shape::Bool,
    ))
}

pub(crate) fn incr(key: &Bound<'_, PyAny>, amount: i64) -> PyResult<(Cmd, Shape)> {
    Ok((
        cmd("INCRBY").arg(to_arg(key)?).arg(amount).clone(),
        Shape::Raw,
    ))
}

pub(crate) fn hget(key: &Bound<'_, PyAny>, field: &Bound<'_, PyAny>) -> PyResult<(Cmd, Shape)> {
    Ok((
        cmd("HGET").arg(to_arg(key)?).arg(to_arg(field)?).clone(),
        Shape::Raw,
    ))
}

pub(crate) fn hset(
    key: &Bound<'_, PyAny>,
    field: Option<&Bound<'_, PyAny>>,
    value: Option<&Bound<'_, PyAny>>,
    mapping: Option<&Bound<'_, PyDict>>,
) -> PyResult<(Cmd, Shape)> {
    let mut c = cmd("HSET");
    c.arg(to_arg(key)?);
    let mut pairs = 0;
    match (field, value) {
        (Some(f), Some(v)) => {
            c.arg(to_arg(f)?).arg(to_arg(v)?);
            pairs += 1;
        }
        (None, None) => {}
        _ => return Err(PyValueError::new_err("give field and value together")),
    }
    if let Some(mapping) = mapping {
        for (f, v) in mapping.iter() {
            c.arg(to_arg(&f)?).arg(to_arg(&v)?);
            pairs += 1;
        }
    }
    if pairs == 0 {
        return Err(PyValueError::new_err(
            "hset needs a field and value, or a mapping",
        ));
    }
    Ok((c, Shape::Raw))
}

pub(crate) fn hgetall(key: &Bound<'_, PyAny>) -> PyResult<(Cmd, Shape)> {
    Ok((cmd("HGETALL").arg(to_arg(key)?).clone(), Shape::Dict))
}

pub(crate) fn publish(
    channel: &Bound<'_, PyAny>,
    message: &Bound<'_, PyAny>,
) -> PyResult<(Cmd, Shape)> {
    Ok((
        cmd("PUBLISH")
            .arg(to_arg(channel)?)
            .arg(to_arg(message)?)
            .clone(),
        Shape::Raw,
    ))
}

pub(crate) fn generic(args: &Bound<'_, PyTuple>) -> PyResult<(Cmd, Shape)> {
    let mut args = to_args(args)?.into_iter();
    let Some(name) = args.next() else {
        return Err(PyValueError::new_err("execute needs a command name"));
    };
    let mut c = redis::cmd(&String::from_utf8_lossy(&name));
    for a in args {
        c.arg(a);
    }
    Ok((c, Shape::Raw))
}
