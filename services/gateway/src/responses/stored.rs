//! The stored responses, read back: `GET /v1/responses/{id}` (the Response as
//! answered), `DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items`
//! (its input items, paginated as OpenAI's lists are: `limit` 1–100, default
//! 20; `order` `desc` by default; `after` an item id). Only the key that
//! created a response finds it.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::Error;

pub async fn retrieve(state: &AppState, key: Option<&str>, id: &str) -> Result<Value, Error> {
    let entry = state
        .conversations()
        .get(id, key)
        .await?
        .ok_or_else(|| Error::ResponseNotFound(id.to_owned()))?;
    Ok(entry.response)
}

pub async fn delete(state: &AppState, key: Option<&str>, id: &str) -> Result<Value, Error> {
    if !state.conversations().delete(id, key).await? {
        return Err(Error::ResponseNotFound(id.to_owned()));
    }
    Ok(json!({"id": id, "object": "response.deleted", "deleted": true}))
}

/// `input_items`' query.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub order: Option<String>,
    pub after: Option<String>,
}

pub async fn input_items(
    state: &AppState,
    key: Option<&str>,
    id: &str,
    query: &ListQuery,
) -> Result<Value, Error> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(invalid("limit", "'limit' must be between 1 and 100."));
    }
    let ascending = match query.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(invalid("order", "'order' must be 'asc' or 'desc'.")),
    };
    let entry = state
        .conversations()
        .get(id, key)
        .await?
        .ok_or_else(|| Error::ResponseNotFound(id.to_owned()))?;
    let mut items = entry.input;
    if !ascending {
        items.reverse();
    }
    if let Some(after) = &query.after {
        let at = items
            .iter()
            .position(|i| i["id"].as_str() == Some(after))
            .ok_or_else(|| invalid("after", "'after' names no item of this response."))?;
        items.drain(..=at);
    }
    let has_more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let first_id = items
        .first()
        .map(|i| i["id"].clone())
        .unwrap_or(Value::Null);
    let last_id = items.last().map(|i| i["id"].clone()).unwrap_or(Value::Null);
    Ok(json!({
        "object": "list",
        "data": items,
        "first_id": first_id,
        "last_id": last_id,
        "has_more": has_more,
    }))
}

fn invalid(param: &'static str, message: &'static str) -> Error {
    Error::InvalidRequest(llm::openai::InvalidRequest::InvalidValue {
        param: param.to_owned(),
        message,
    })
}
