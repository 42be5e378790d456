//! One unordered `update` command and what became of each of its statements: applied, a duplicate key
//! (E11000: for a statement filtered on `{_id, wm}` with `upsert`, the filter missed an existing
//! document), or another per-statement error. A transient error anywhere ([`TRANSIENT_CODES`], an unmet
//! write concern) fails the whole call, since the caller re-reads and retries anyway.

use mongodb::bson::{Document, doc};

use super::errors::{TRANSIENT_CODES, store_error};
use super::{DUPLICATE_KEY, MongoStore, lenient_u64};
use crate::store::StoreError;

/// Majority-acknowledged and journaled: an applied write survives a failover (`docs/design.md` §5.3).
pub(super) fn durable() -> Document {
    doc! {"w": "majority", "j": true}
}

/// How one statement of a bulk update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Statement {
    Done,
    DuplicateKey,
    Failed { code: Option<i64>, message: String },
}

/// What an `update` command did.
#[derive(Debug)]
pub(super) struct BulkReply {
    /// One per statement, in order.
    pub statements: Vec<Statement>,
    /// Documents changed (`nModified`).
    pub modified: u64,
}

impl MongoStore {
    /// Runs `statements` as one unordered `update` with write concern `concern`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the command fails transiently, the write concern is not met, or
    /// any statement failed with a transient code; [`StoreError::Unexpected`] when the command is refused
    /// or the reply cannot be read.
    pub(super) async fn bulk_update(
        &self,
        statements: Vec<Document>,
        concern: Option<Document>,
    ) -> Result<BulkReply, StoreError> {
        let count = statements.len();
        let mut command = doc! {
            "update": self.collection.name(),
            "updates": statements,
            "ordered": false,
        };
        if let Some(concern) = concern {
            command.insert("writeConcern", concern);
        }
        let reply = self.db.run_command(command).await.map_err(store_error)?;
        parse_reply(&reply, count)
    }
}

/// Reads an `update` reply of `count` statements.
pub(super) fn parse_reply(reply: &Document, count: usize) -> Result<BulkReply, StoreError> {
    if let Ok(concern) = reply.get_document("writeConcernError") {
        return Err(StoreError::unavailable(format!(
            "write concern not met: {}",
            concern.get_str("errmsg").unwrap_or("unknown")
        )));
    }
    let mut statements = vec![Statement::Done; count];
    if let Ok(errors) = reply.get_array("writeErrors") {
        for error in errors {
            let error = error
                .as_document()
                .ok_or_else(|| StoreError::unexpected("MongoDB: unreadable writeErrors"))?;
            let code = error
                .get("code")
                .and_then(|c| c.as_i64().or_else(|| c.as_i32().map(i64::from)));
            let message = error.get_str("errmsg").unwrap_or("unknown").to_owned();
            if code.is_some_and(|c| i32::try_from(c).is_ok_and(|c| TRANSIENT_CODES.contains(&c))) {
                return Err(StoreError::unavailable(format!("write error: {message}")));
            }
            let slot = error
                .get("index")
                .and_then(lenient_u64)
                .and_then(|i| statements.get_mut(usize::try_from(i).ok()?))
                .ok_or_else(|| StoreError::unexpected("MongoDB: writeErrors index out of range"))?;
            *slot = if code == Some(i64::from(DUPLICATE_KEY)) {
                Statement::DuplicateKey
            } else {
                Statement::Failed { code, message }
            };
        }
    }
    let modified = reply.get("nModified").and_then(lenient_u64).unwrap_or(0);
    Ok(BulkReply {
        statements,
        modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_statement_gets_its_outcome() {
        let reply = doc! {
            "ok": 1, "n": 1, "nModified": 1,
            "writeErrors": [
                {"index": 0, "code": 11000, "errmsg": "dup"},
                {"index": 2, "code": 14, "errmsg": "Cannot apply $inc to a value of non-numeric type"},
            ],
        };
        let parsed = parse_reply(&reply, 3).unwrap();
        assert_eq!(parsed.modified, 1);
        assert_eq!(parsed.statements[0], Statement::DuplicateKey);
        assert_eq!(parsed.statements[1], Statement::Done);
        assert!(matches!(
            &parsed.statements[2],
            Statement::Failed { code: Some(14), .. }
        ));
    }

    #[test]
    fn a_transient_statement_error_or_unmet_concern_fails_the_whole_call() {
        let transient =
            doc! {"ok": 1, "writeErrors": [{"index": 1, "code": 112, "errmsg": "conflict"}]};
        assert!(parse_reply(&transient, 2).unwrap_err().is_transient());
        let concern =
            doc! {"ok": 1, "n": 2, "writeConcernError": {"code": 64, "errmsg": "timeout"}};
        assert!(parse_reply(&concern, 2).unwrap_err().is_transient());
        let out_of_range = doc! {"ok": 1, "writeErrors": [{"index": 5, "code": 2, "errmsg": "x"}]};
        assert!(!parse_reply(&out_of_range, 2).unwrap_err().is_transient());
    }
}
