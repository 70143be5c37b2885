//! The OpenAI Responses API (`/v1/responses`): the request as the gateway reads
//! it, the typed conversation items, the Response object and the stream events.
//! Translation to and from Chat Completions is in
//! [`crate::translate::responses_to_chat`].
//!
//! - `request`: [`ResponsesRequest`], a raw-preserving view of a request body
//!   (pass-through rewrites only `model`), its interpreted members typed and
//!   checked, and the [`Echo`] a Response repeats.
//! - `items`: [`Item`], one entry of `input`, `output` or a stored conversation
//!   (messages, function calls and their outputs, reasoning; other types kept as
//!   raw JSON), with message [`Content`] and its [`ContentPart`]s.
//! - `params`: the request parameters a Response echoes: [`Tool`],
//!   [`ToolChoice`], [`TextConfig`], [`ReasoningConfig`], gathered in [`Echo`].
//! - `response`: [`Response`], its [`Status`] and [`Usage`], and
//!   [`ResponseMeta`], the id, time and model the gateway gives a response it
//!   builds (item ids derive from it).
//! - `events`: [`StreamEvent`], one numbered stream event, and its SSE frame.

mod events;
mod items;
mod params;
mod request;
mod response;

pub use events::{ErrorEventDetail, EventPayload, StreamEvent};
pub use items::{
    Content, ContentPart, FunctionCall, FunctionCallOutput, InputFile, InputImage, Item,
    ItemStatus, Message, OutputText, Reasoning, RefusalPart, Role, SummaryPart, TextPart,
};
pub use params::{Echo, FunctionTool, ReasoningConfig, TextConfig, TextFormat, Tool, ToolChoice};
pub use request::ResponsesRequest;
pub use response::{
    IncompleteDetails, InputTokensDetails, OutputTokensDetails, Response, ResponseError,
    ResponseMeta, Status, Usage,
};
