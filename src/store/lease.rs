//! The leader's lease, for controllers sharing one PostgreSQL database: one row per election,
//! naming its holder, the address it serves on, an epoch and a deadline. Time is the
//! database's (`clock_timestamp()`), so the controllers' clocks may disagree.
//!
//! Why it is safe: a holder renews every third of the lease and steps down (the process
//! exits) once four fifths of a lease have passed since the start of its last renewal that
//! held, on its own boot clock. The database sets the deadline when the renewal arrives,
//! after that start, so the holder has stopped before another can take the lease, unless the
//! two clocks run at rates a fifth apart. A holder that was paused (and so could not step
//! down) is fenced instead: every write transaction ends by checking, under a share lock on
//! the lease row held until it commits, that its epoch still holds the lease, and a new
//! holder always takes a new epoch. What is fenced is the database: a paused holder's driver
//! call or notification already under way when it resumes is not (see the README).

use super::sql::{Db, values};
use super::{Backend, Store, StoreError};

/// The database's time, epoch milliseconds.
const NOW: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// A lease held: what fences this holder's writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The election.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// Increased at every change of holder (and at a holder's restart).
    pub epoch: i64,
}

/// Who leads, as a standby sees it (default: nobody known).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leader {
    /// The holder's name.
    pub holder: String,
    /// Where the leader serves its API.
    pub address: String,
    /// Its epoch.
    pub epoch: i64,
    /// Milliseconds until its lease runs out unless renewed.
    pub expires_in_ms: i64,
}

impl Store {
    /// Takes the lease of election `name` for `ttl_ms` when it is free, expired, or held by
    /// `holder` itself (a restart); otherwise answers who leads.
    pub fn try_lead(
        &self,
        name: &str,
        holder: &str,
        address: &str,
        ttl_ms: i64,
    ) -> Result<Result<Lease, Leader>, StoreError> {
        self.postgres_only()?;
        let sql = format!(
            "INSERT INTO leader_lease (name, holder, address, epoch, expires_ms, renewed_ms)
             VALUES (?1, ?2, ?3, 1, {NOW} + ?4, {NOW})
             ON CONFLICT (name) DO UPDATE SET
                holder = excluded.holder, address = excluded.address,
                epoch = leader_lease.epoch + 1,
                expires_ms = excluded.expires_ms, renewed_ms = excluded.renewed_ms
             WHERE leader_lease.expires_ms <= excluded.renewed_ms
                OR leader_lease.holder = excluded.holder
             RETURNING epoch"
        );
        let taken =
            self.with_db(|db| db.query_opt(&sql, &values![name, holder, address, ttl_ms]))?;
        if let Some(row) = taken {
            return Ok(Ok(Lease {
                name: name.to_string(),
                holder: holder.to_string(),
                epoch: row.get(0)?,
            }));
        }
        match self.leader(name)? {
            Some(leader) => Ok(Err(leader)),
            // Released between the two statements: try again next time.
            None => Ok(Err(Leader::default())),
        }
    }

    /// Takes the lease of election `name` for `ttl_ms`, in a new epoch, for a holder that
    /// another election (a Kubernetes Lease) chose in `term`: whoever holds the row, unless
    /// it was taken in a later term and has not run out. The holder renews it as usual, so
    /// the database still fences the writes of the holder it deposed; `None` when a later
    /// term holds it.
    pub fn seize(
        &self,
        name: &str,
        holder: &str,
        address: &str,
        term: i64,
        ttl_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.postgres_only()?;
        let sql = format!(
            "INSERT INTO leader_lease (name, holder, address, epoch, expires_ms, renewed_ms, term)
             VALUES (?1, ?2, ?3, 1, {NOW} + ?4, {NOW}, ?5)
             ON CONFLICT (name) DO UPDATE SET
                holder = excluded.holder, address = excluded.address,
                epoch = leader_lease.epoch + 1, term = excluded.term,
                expires_ms = excluded.expires_ms, renewed_ms = excluded.renewed_ms
             WHERE leader_lease.term < excluded.term
                OR leader_lease.expires_ms <= excluded.renewed_ms
             RETURNING epoch"
        );
        let row =
            self.with_db(|db| db.query_opt(&sql, &values![name, holder, address, ttl_ms, term]))?;
        row.map(|row| {
            Ok(Lease {
                name: name.to_string(),
                holder: holder.to_string(),
                epoch: row.get(0)?,
            })
        })
        .transpose()
    }

    /// Extends `lease` by `ttl_ms` from now; false when it is no longer held (expired and
    /// taken, or released).
    pub fn renew(&self, lease: &Lease, ttl_ms: i64) -> Result<bool, StoreError> {
        self.postgres_only()?;
        let sql = format!(
            "UPDATE leader_lease SET expires_ms = {NOW} + ?4, renewed_ms = {NOW}
             WHERE name = ?1 AND holder = ?2 AND epoch = ?3 AND expires_ms > {NOW}"
        );
        let changed = self.with_db(|db| {
            db.execute(
                &sql,
                &values![&lease.name, &lease.holder, lease.epoch, ttl_ms],
            )
        })?;
        Ok(changed == 1)
    }

    /// Records where the holder of `lease` serves, for standbys to point to.
    pub fn advertise(&self, lease: &Lease, address: &str) -> Result<(), StoreError> {
        self.postgres_only()?;
        self.with_db(|db| {
            db.execute(
                "UPDATE leader_lease SET address = ?4
                 WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
                &values![&lease.name, &lease.holder, lease.epoch, address],
            )
        })?;
        Ok(())
    }

    /// Gives `lease` up at once, so that a standby need not wait for it to run out.
    pub fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.postgres_only()?;
        self.with_db(|db| {
            db.execute(
                "UPDATE leader_lease SET expires_ms = 0
                 WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
                &values![&lease.name, &lease.holder, lease.epoch],
            )
        })?;
        Ok(())
    }

    /// Who holds the lease of election `name`, if anyone ever did.
    pub fn leader(&self, name: &str) -> Result<Option<Leader>, StoreError> {
        self.postgres_only()?;
        let sql = format!(
            "SELECT holder, address, epoch, expires_ms - {NOW} FROM leader_lease WHERE name = ?1"
        );
        let row = self.with_db(|db| db.query_opt(&sql, &values![name]))?;
        row.map(|row| {
            Ok(Leader {
                holder: row.get(0)?,
                address: row.get(1)?,
                epoch: row.get(2)?,
                expires_in_ms: row.get(3)?,
            })
        })
        .transpose()
    }

    /// From now on every write transaction of this store (and its clones) first checks that
    /// `lease` still holds, and fails with [`StoreError::Fenced`] when it does not.
    pub fn fence(&self, lease: Lease) {
        let _ = self.fence.set(lease);
    }

    fn postgres_only(&self) -> Result<(), StoreError> {
        match *self.backend {
            Backend::Postgres { .. } => Ok(()),
            Backend::Sqlite { .. } => Err(StoreError::NeedsPostgres),
        }
    }
}

/// Last in a write transaction: fails unless `lease` still holds, and keeps a share lock on
/// its row until the transaction ends, so no other holder can take it before the commit.
pub(super) fn check_fence(db: &mut dyn Db, lease: &Lease) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT epoch FROM leader_lease
         WHERE name = ?1 AND holder = ?2 AND epoch = ?3 AND expires_ms > {NOW}
         FOR SHARE"
    );
    match db.query_opt(&sql, &values![&lease.name, &lease.holder, lease.epoch])? {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced(lease.epoch)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Polls `check` until it answers `Some`, failing after ten seconds.
    fn within<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(value) = check() {
                return value;
            }
            assert!(Instant::now() < deadline, "no {what} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn one_holder_at_a_time_and_a_deposed_one_is_fenced() {
        let url = super::super::testing::TestServer::shared().fresh_database();
        let (a, b) = (
            Store::connect(&url, None).unwrap(),
            Store::connect(&url, None).unwrap(),
        );
        let lease = a
            .try_lead("main", "a", "http://a", 60_000)
            .unwrap()
            .unwrap();
        assert_eq!(lease.epoch, 1);
        let seen = b
            .try_lead("main", "b", "http://b", 60_000)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (seen.holder.as_str(), seen.address.as_str()),
            ("a", "http://a")
        );
        assert!(seen.expires_in_ms > 50_000, "{seen:?}");
        a.advertise(&lease, "http://a:8080").unwrap();
        assert_eq!(b.leader("main").unwrap().unwrap().address, "http://a:8080");
        // A restart of the holder takes the lease again, in a new epoch.
        let again = a
            .try_lead("main", "a", "http://a", 60_000)
            .unwrap()
            .unwrap();
        assert_eq!(again.epoch, 2);
        assert!(!a.renew(&lease, 60_000).unwrap(), "the old epoch is gone");

        // A short lease that is not renewed runs out; the other takes it, in a new epoch.
        a.fence(again.clone());
        assert!(a.renew(&again, 1_500).unwrap());
        a.check_writable().unwrap();
        let taken = within("takeover", || {
            b.try_lead("main", "b", "http://b", 60_000).unwrap().ok()
        });
        assert_eq!(taken.epoch, 3);
        // The deposed holder can neither renew nor write.
        assert!(!a.renew(&again, 60_000).unwrap());
        assert!(matches!(a.check_writable(), Err(StoreError::Fenced(2))));
        // Seized (another election chose a), b is fenced at once, whatever its deadline.
        b.fence(taken.clone());
        let c = Store::connect(&url, None).unwrap();
        let seized = c
            .seize("main", "c", "http://c", 7, 60_000)
            .unwrap()
            .unwrap();
        assert_eq!(seized.epoch, 4);
        // A holder chosen in an earlier term cannot seize it back while it holds.
        assert_eq!(a.seize("main", "a", "http://a", 6, 60_000).unwrap(), None);
        assert!(c.renew(&seized, 60_000).unwrap());
        assert!(matches!(b.check_writable(), Err(StoreError::Fenced(3))));
        c.fence(seized.clone());
        c.check_writable().unwrap();
        assert_eq!(c.leader("main").unwrap().unwrap().holder, "c");
        // Released, the lease is free at once.
        c.release(&seized).unwrap();
        let taken = b
            .try_lead("main", "b", "http://b", 60_000)
            .unwrap()
            .unwrap();
        assert_eq!(taken.epoch, 5);
        b.release(&taken).unwrap();
        let back = a
            .try_lead("main", "a", "http://a", 60_000)
            .unwrap()
            .unwrap();
        assert_eq!(back.epoch, 6);
        assert!(matches!(
            Store::open(tempfile::tempdir().unwrap().path())
                .unwrap()
                .leader("main"),
            Err(StoreError::NeedsPostgres)
        ));
    }
}
