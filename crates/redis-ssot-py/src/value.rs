//! Python values in, Redis values out.
//!
//! ## Behavior
//! - Arguments: `bytes`, `bytearray` and `memoryview` as they are, `str` as UTF-8, `int` and
//!   `float` as their decimal text. `bool` and `None` are refused (as redis-py does): their
//!   wire form is a guess.
//! - Replies: bulk strings are `bytes`, or `str` on handles with `decode_responses`; simple
//!   strings (`OK`) follow the same rule; integers, doubles and booleans are `int`, `float`
//!   and `bool`; nil is `None`; arrays and sets are lists; maps are dicts.

use pyo3::exceptions::{PyTypeError, PyUnicodeDecodeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};
use redis_ssot::redis::{self, Value};

/// One command argument as sent to Redis.
pub(crate) fn to_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return Ok(bytes.as_bytes().to_vec());
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return Ok(text.to_cow()?.as_bytes().to_vec());
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "bool is not a Redis value: send b'1'/b'0' or an int explicitly",
        ));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(obj.extract::<i64>()?.to_string().into_bytes());
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(obj.str()?.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(array) = obj.cast::<PyByteArray>() {
        return Ok(array.to_vec());
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let copied = obj.py().get_type::<PyBytes>().call1((obj,))?;
        return Ok(copied.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(PyTypeError::new_err(format!(
        "cannot send {} to Redis: use bytes, str, int or float",
        obj.get_type().name()?
    )))
}

/// Every argument of `args`, converted with [`to_arg`].
pub(crate) fn to_args(args: &Bound<'_, PyTuple>) -> PyResult<Vec<Vec<u8>>> {
    args.iter().map(|a| to_arg(&a)).collect()
}

fn text<'py>(py: Python<'py>, bytes: &[u8], decode: bool) -> PyResult<Bound<'py, PyAny>> {
    if !decode {
        return Ok(PyBytes::new(py, bytes).into_any());
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(PyString::new(py, s).into_any()),
        Err(e) => Err(PyUnicodeDecodeError::new_utf8(py, bytes, e)?.into()),
    }
}

pub(crate) fn convert(py: Python<'_>, value: Value, decode: bool) -> PyResult<Bound<'_, PyAny>> {
    Ok(match value {
        Value::Nil => py.None().into_bound(py),
        Value::Int(n) => n.into_pyobject(py)?.into_any(),
        Value::BulkString(bytes) => text(py, &bytes, decode)?,
        Value::SimpleString(s) => text(py, s.as_bytes(), decode)?,
        Value::Okay => text(py, b"OK", decode)?,
        Value::Double(f) => f.into_pyobject(py)?.into_any(),
        Value::Boolean(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::VerbatimString { text: t, .. } => text(py, t.as_bytes(), decode)?,
        Value::BigNumber(n) => py
            .import("builtins")?
            .getattr("int")?
            .call1((String::from_utf8_lossy(&n).into_owned(),))?,
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            let list = PyList::empty(py);
            for item in items {
                list.append(convert(py, item, decode)?)?;
            }
            list.into_any()
        }
        Value::Map(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(convert(py, k, decode)?, convert(py, v, decode)?)?;
            }
            dict.into_any()
        }
        Value::Attribute { data, .. } => convert(py, *data, decode)?,
        Value::ServerError(err) => {
            return Err(crate::errors::to_pyerr(
                py,
                redis_ssot::Error::Redis(redis::RedisError::from(err)),
            ));
        }
        other => {
            return Err(PyTypeError::new_err(format!("unsupported reply {other:?}")));
        }
    })
}
