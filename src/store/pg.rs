//! The PostgreSQL connection: tokio-postgres, driven by a runtime on a thread of its own so
//! that the store's synchronous callers (actors on actix's threads, the rollup writer, the
//! blocking pool) can wait on it from anywhere. A lost connection is made again on the next
//! call.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{StreamExt, pin_mut};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::StoreError;
use super::sql::{Db, Row, Value};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Statements the server may run before it cancels them: a hung lock or disk turns into an
/// error the caller sees (the actuator fails closed on it) instead of a wait without end.
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// One connection to the server, with its prepared statements.
pub(super) struct PgConn {
    config: Config,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// Connects to `url`, with `password` when the URL carries none.
    pub(super) fn connect(url: &str, password: Option<&str>) -> Result<PgConn, StoreError> {
        let mut config: Config = url.parse().map_err(StoreError::Postgres)?;
        if let Some(password) = password {
            config.password(password);
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("swarmpilot")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .options(format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
        let mut conn = PgConn {
            config,
            client: None,
            statements: HashMap::new(),
        };
        conn.client()?;
        Ok(conn)
    }

    /// The live client, connecting again when the last one was lost.
    fn client(&mut self) -> Result<&Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = Some(spawn_connection(&self.config)?);
        }
        Ok(self.client.as_ref().expect("just connected"))
    }

    /// `sql` prepared once per connection; `?N` marks become `$N`.
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let text = dollar_marks(sql);
        let statement = futures_executor::block_on(self.client()?.prepare(&text))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Runs statements with no parameters and no answer (schema, BEGIN, COMMIT).
    pub(super) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let client = self.client()?;
        Ok(futures_executor::block_on(client.batch_execute(sql))?)
    }
}

/// Connects, and drives the connection on a thread of its own until it closes.
fn spawn_connection(config: &Config) -> Result<Client, StoreError> {
    let config = config.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("store-postgres".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = tx.send(Err(StoreError::Runtime(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                match config.connect(NoTls).await {
                    Ok((client, connection)) => {
                        let _ = tx.send(Ok(client));
                        if let Err(error) = connection.await {
                            tracing::warn!(message = "PostgreSQL connection lost.", %error);
                        }
                    }
                    Err(error) => {
                        let _ = tx.send(Err(StoreError::Postgres(error)));
                    }
                }
            });
        })
        .map_err(StoreError::Runtime)?;
    rx.recv().unwrap_or(Err(StoreError::NoRow))
}

/// `?N` parameter marks as PostgreSQL's `$N` (the store's SQL has no `?` elsewhere).
fn dollar_marks(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be sent as {ty}").into()),
            },
            Value::Real(v) => match *ty {
                Type::FLOAT8 => v.to_sql(ty, out),
                Type::FLOAT4 => (*v as f32).to_sql(ty, out),
                _ => Err(format!("a float cannot be sent as {ty}").into()),
            },
            Value::Text(v) => v.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A row from the server as the store's values.
fn row_values(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(index)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Value::Real),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(index)?
                .map(|v| Value::Real(v.into())),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
                row.try_get::<_, Option<String>>(index)?.map(Value::Text)
            }
            ref other => {
                return Err(StoreError::Column {
                    index,
                    why: format!("type {other}, which the store never reads"),
                });
            }
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl Db for PgConn {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let client = self.client()?;
        Ok(futures_executor::block_on(
            client.execute_raw(&statement, params.iter()),
        )?)
    }

    fn execute_each(&mut self, sql: &str, each: &[Vec<Value>]) -> Result<Vec<u64>, StoreError> {
        let statement = self.statement(sql)?;
        let client = self.client()?;
        // Futures polled together are pipelined on the one connection.
        let runs = each
            .iter()
            .map(|params| client.execute_raw(&statement, params.iter()));
        Ok(futures_executor::block_on(
            futures_util::future::try_join_all(runs),
        )?)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let statement = self.statement(sql)?;
        let client = self.client()?;
        futures_executor::block_on(async {
            let rows = client.query_raw(&statement, params.iter()).await?;
            pin_mut!(rows);
            while let Some(row) = rows.next().await {
                visit(row_values(&row?)?)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_marks_become_dollar_marks() {
        assert_eq!(
            dollar_marks("SELECT ?1, ?12 WHERE a = '?' AND b = ?2"),
            "SELECT $1, $12 WHERE a = '?' AND b = $2"
        );
    }
}
