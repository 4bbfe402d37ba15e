//! The PostgreSQL connection: tokio-postgres, driven by a runtime on a thread of its own so
//! that the store's synchronous callers (actors on actix's threads, the rollup writer, the
//! blocking pool) can wait on it from anywhere. A lost connection is made again on the next
//! call, but never inside a transaction (that fails, as the server rolled it back).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::{StreamExt, pin_mut};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::StoreError;
use super::sql::{Db, Row, Value};

/// How long a connection attempt may take, start-up and authentication included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After a failed attempt, calls fail at once for this long instead of each trying again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Statements the server may run before it cancels them: a hung lock or disk turns into an
/// error the caller sees (the actuator fails closed on it) instead of a wait without end.
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// Where a connection stands with a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    /// None open.
    Idle,
    /// Open, every statement so far succeeded.
    Open,
    /// Open, and a statement failed: it can only roll back.
    Failed,
}

/// One connection to the server, with its prepared statements.
pub(super) struct PgConn {
    config: Config,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    tx: TxState,
    /// Until when calls fail at once, after a failed connection attempt.
    retry_at: Option<Instant>,
}

impl PgConn {
    /// Connects to `url`; `password`, when given, is used instead of any in the URL.
    pub(super) fn connect(url: &str, password: Option<&str>) -> Result<PgConn, StoreError> {
        let mut config: Config = url.parse().map_err(StoreError::from)?;
        if let Some(password) = password {
            config.password(password);
        }
        // The URL's own options (a search_path, say) are kept.
        let options = config
            .get_options()
            .map(|o| format!("{o} "))
            .unwrap_or_default();
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("swarmpilot")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(30))
            .options(format!(
                "{options}-c statement_timeout={STATEMENT_TIMEOUT_MS}"
            ));
        let mut conn = PgConn {
            config,
            client: None,
            statements: HashMap::new(),
            tx: TxState::Idle,
            retry_at: None,
        };
        conn.client()?;
        Ok(conn)
    }

    /// The live client, connecting again when the last one was lost, but never inside a
    /// transaction: the server rolled that back, and what follows must not run outside it.
    fn client(&mut self) -> Result<&Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            if self.tx != TxState::Idle {
                return Err(StoreError::Connection(
                    "the connection was lost inside a transaction, which rolled back".into(),
                ));
            }
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(StoreError::Connection(
                    "the server could not be reached a moment ago".into(),
                ));
            }
            self.statements.clear();
            match spawn_connection(&self.config) {
                Ok(client) => {
                    self.client = Some(client);
                    self.retry_at = None;
                }
                Err(error) => {
                    self.retry_at = Some(Instant::now() + RETRY_AFTER);
                    return Err(error);
                }
            }
        }
        Ok(self.client.as_ref().expect("just connected"))
    }

    /// `sql` prepared once per connection; `?N` marks become `$N`.
    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        // First the client: a new connection empties the cache of the old one's statements.
        self.client()?;
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let text = dollar_marks(sql);
        let prepared = futures_executor::block_on(self.client()?.prepare(&text));
        let statement = self.track(prepared.map_err(StoreError::from))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Passes `result` on; an error inside a transaction marks it failed.
    fn track<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() && self.tx == TxState::Open {
            self.tx = TxState::Failed;
        }
        result
    }

    /// Runs statements with no parameters and no answer (BEGIN, COMMIT, schema changes).
    pub(super) fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let client = self.client()?;
        let done = futures_executor::block_on(client.batch_execute(sql)).map_err(StoreError::from);
        self.track(done)
    }

    /// Rolls back a transaction a panic left open (the store's lock goes on after one).
    pub(super) fn reset(&mut self) {
        if self.tx != TxState::Idle {
            tracing::warn!(message = "Rolling back a transaction left open.");
            self.rollback();
        }
    }

    fn rollback(&mut self) {
        if let Some(client) = self.client.as_ref().filter(|c| !c.is_closed()) {
            // A lost connection rolled back already.
            let _ = futures_executor::block_on(client.batch_execute("ROLLBACK"));
        }
        self.tx = TxState::Idle;
    }

    /// Runs `f` in one transaction: committed when `f` and every statement in it succeeded,
    /// rolled back otherwise.
    pub(super) fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut PgConn) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        self.reset();
        self.batch("BEGIN")?;
        self.tx = TxState::Open;
        let out = f(self).and_then(|out| match self.tx {
            TxState::Open => self.batch("COMMIT").map(|()| out),
            _ => Err(StoreError::Connection(
                "a statement of the transaction failed; it rolled back".into(),
            )),
        });
        if out.is_err() {
            self.rollback();
        }
        self.tx = TxState::Idle;
        out
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
                // The whole of it bounded, start-up and authentication too.
                let attempt = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await;
                match attempt {
                    Ok(Ok((client, connection))) => {
                        let _ = tx.send(Ok(client));
                        if let Err(error) = connection.await {
                            tracing::warn!(message = "PostgreSQL connection lost.",
                                error = %super::describe(&error));
                        }
                    }
                    Ok(Err(error)) => {
                        let _ = tx.send(Err(StoreError::from(error)));
                    }
                    Err(_) => {
                        let _ = tx.send(Err(StoreError::Connection(format!(
                            "no connection within {} s",
                            CONNECT_TIMEOUT.as_secs()
                        ))));
                    }
                }
            });
        })
        .map_err(StoreError::Runtime)?;
    rx.recv().unwrap_or_else(|_| {
        Err(StoreError::Connection(
            "the connection's thread ended without an answer".into(),
        ))
    })
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
    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        PgConn::batch(self, sql)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let client = self.client()?;
        let done = futures_executor::block_on(client.execute_raw(&statement, params.iter()));
        self.track(done.map_err(StoreError::from))
    }

    fn execute_each(&mut self, sql: &str, each: &[Vec<Value>]) -> Result<Vec<u64>, StoreError> {
        let statement = self.statement(sql)?;
        let client = self.client()?;
        // Futures polled together are pipelined on the one connection.
        let runs = each
            .iter()
            .map(|params| client.execute_raw(&statement, params.iter()));
        let done = futures_executor::block_on(futures_util::future::try_join_all(runs));
        self.track(done.map_err(StoreError::from))
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Value],
        visit: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let statement = self.statement(sql)?;
        let client = self.client()?;
        let done = futures_executor::block_on(async {
            let rows = client.query_raw(&statement, params.iter()).await?;
            pin_mut!(rows);
            while let Some(row) = rows.next().await {
                visit(row_values(&row?)?)?;
            }
            Ok(())
        });
        self.track(done)
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
