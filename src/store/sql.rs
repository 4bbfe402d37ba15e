//! SQL that runs on either backend: the values and rows the store's queries pass, and the
//! `Db` trait both connections implement. Queries are written once, in the SQL both engines
//! speak, with SQLite's numbered `?N` parameters (PostgreSQL's connection rewrites them as
//! `$N`); only the schema is written per engine (`schema.rs`).

use super::StoreError;

/// One SQL value, as the store's queries pass and read them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// NULL.
    Null,
    /// An integer (`INTEGER`, `BIGINT`, a boolean as 0 or 1).
    Int(i64),
    /// A float (`REAL`, `DOUBLE PRECISION`).
    Real(f64),
    /// A text.
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Builds an array of `Value`s from expressions of any type that converts.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::sql::Value::from($value)),*]
    };
}
pub(super) use values;

/// A column type a row's value converts to.
pub(super) trait FromValue: Sized {
    /// The value, or why it is not one of these.
    fn from_value(value: &Value) -> Result<Self, String>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(v) => Ok(*v),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        i64::from_value(value).map(|v| v.max(0) as u64)
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        i64::from_value(value).map(|v| v != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(v) => Ok(*v),
            // SQLite keeps a whole REAL as an integer when it can.
            Value::Int(v) => Ok(*v as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => Err(format!("expected a text, found {other:?}")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row a query answered.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `index`, as `T`.
    pub(super) fn get<T: FromValue>(&self, index: usize) -> Result<T, StoreError> {
        let value = self.0.get(index).unwrap_or(&Value::Null);
        T::from_value(value).map_err(|why| StoreError::Column { index, why })
    }

    /// Column `index`, a JSON text, parsed.
    pub(super) fn json<T: serde::de::DeserializeOwned>(
        &self,
        index: usize,
    ) -> Result<T, StoreError> {
        Ok(serde_json::from_str(&self.get::<String>(index)?)?)
    }

    /// Column `index`, a snake_case name, as the enum it names.
    pub(super) fn name<T: std::str::FromStr<Err = crate::domain::UnknownName>>(
        &self,
        index: usize,
    ) -> Result<T, StoreError> {
        Ok(self.get::<String>(index)?.parse()?)
    }
}

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Engine {
    /// The engine's name, as `/api/v1/system` and the logs give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A connection (or a transaction on one) that runs the store's SQL.
pub(super) trait Db {
    /// Runs a statement; answers how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;

    /// Calls `visit` with each row the query answers, as they arrive.
    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Runs statements with no parameters and no answer (schema changes).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;

    /// Runs one statement once for each parameter list; answers how many rows each run
    /// changed. PostgreSQL sends them all before reading any answer (one round trip); each
    /// commits on its own outside a transaction, so call it inside `with_tx`.
    fn execute_each(&mut self, sql: &str, each: &[Vec<Value>]) -> Result<Vec<u64>, StoreError> {
        each.iter()
            .map(|params| self.execute(sql, params))
            .collect()
    }

    /// Every row the query answers.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut rows = Vec::new();
        self.for_each(sql, params, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }

    /// The first row the query answers, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row the query answers; an error when there is none.
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?.ok_or(StoreError::NoRow)
    }
}

/// An SQLite connection (or transaction, which derefs to one) as a `Db`.
pub(super) struct Lite<'a>(pub(super) &'a rusqlite::Connection);

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Real(v) => ValueRef::Real(*v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
        }))
    }
}

impl Db for Lite<'_> {
    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.0.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for index in 0..width {
                values.push(match row.get_ref(index)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Real(v) => Value::Real(v),
                    ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(_) => {
                        return Err(StoreError::Column {
                            index,
                            why: "a blob, which the store never writes".into(),
                        });
                    }
                });
            }
            visit(Row(values))?;
        }
        Ok(())
    }
}

/// `count` numbered parameter marks from `first`: `?3, ?4, ?5`.
pub(super) fn marks(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_convert_to_what_the_queries_read() {
        let row = Row(values![7_i64, 2.5, "x", None::<i64>].to_vec());
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert_eq!(row.get::<f64>(0).unwrap(), 7.0, "a whole REAL read back");
        assert_eq!(row.get::<f64>(1).unwrap(), 2.5);
        assert_eq!(row.get::<String>(2).unwrap(), "x");
        assert_eq!(row.get::<Option<i64>>(3).unwrap(), None);
        assert!(matches!(
            row.get::<i64>(2),
            Err(StoreError::Column { index: 2, .. })
        ));
        assert_eq!(marks(3, 3), "?3, ?4, ?5");
    }
}
