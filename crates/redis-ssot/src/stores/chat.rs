//! The seam between the gateway and the worker: a chat message as an agent job.
//!
//! The gateway turns each chat message into a job on [`CHAT_QUEUE`] with [`NewJob::chat`];
//! the worker reads it back with [`Job::chat`]. The queue name, the job kind and the
//! payload's JSON shape live here only, so the two sides cannot drift apart.
//!
//! Payload: `{"message_id": "<client's id>", "text": "<message>"}`; the message id is also
//! the idempotency key, so a client resending a message gets the first job back.

use serde::{Deserialize, Serialize};

use super::jobs::{Job, NewJob};
use crate::error::{Error, Result};
use crate::keys::UserId;

/// The queue chat jobs go to (the gateway's and the worker's default).
pub const CHAT_QUEUE: &str = "agent";
/// The job kind of a chat message.
pub const CHAT_KIND: &str = "chat";

/// One chat message to answer: the payload of a [`CHAT_KIND`] job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatJob {
    /// The client's id of the message; every event of the run carries it.
    pub message_id: String,
    /// What the user wrote.
    pub text: String,
}

impl NewJob {
    /// The job for `message` from `user`, enqueued at most once per message id.
    pub fn chat(user: UserId, message: ChatJob) -> NewJob {
        NewJob {
            user,
            kind: CHAT_KIND.to_owned(),
            idempotency_key: Some(message.message_id.clone()),
            payload: serde_json::json!({ "message_id": message.message_id, "text": message.text }),
        }
    }
}

impl Job {
    /// The chat message this job carries; [`Error::Invalid`] (`what` = `chat job`) when its
    /// kind is not [`CHAT_KIND`] or its payload is not a [`ChatJob`].
    pub fn chat(&self) -> Result<ChatJob> {
        if self.kind != CHAT_KIND {
            return Err(Error::invalid(
                "chat job",
                format!("kind is {:?}, not {CHAT_KIND:?}", self.kind),
            ));
        }
        ChatJob::deserialize(&self.payload)
            .map_err(|e| Error::invalid("chat job", format!("payload: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_message_goes_through_the_seam_unchanged() {
        let message = ChatJob {
            message_id: "m-1".into(),
            text: "2*21".into(),
        };
        let new = NewJob::chat("u1".parse().unwrap(), message.clone());
        assert_eq!(new.kind, "chat");
        assert_eq!(new.idempotency_key.as_deref(), Some("m-1"));
        assert_eq!(
            new.payload,
            serde_json::json!({ "message_id": "m-1", "text": "2*21" })
        );
        let job = Job::for_test(new.kind, new.payload);
        assert_eq!(job.chat().unwrap(), message);
    }

    #[test]
    fn other_kinds_and_shapes_are_refused_by_name() {
        let payload = serde_json::json!({ "message_id": "m", "text": "t" });
        let err = Job::for_test("report".into(), payload).chat().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid chat job: kind is \"report\", not \"chat\""
        );
        let err = Job::for_test("chat".into(), serde_json::json!({ "message_id": "m" }))
            .chat()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid chat job: payload: missing field `text`"
        );
    }
}
