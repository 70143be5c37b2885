//! Chat `chat.completion.chunk`s → Responses stream events, for a Responses
//! client streaming from a Chat Completions upstream: one chunk at a time,
//! nothing held back.
//!
//! Choices where the streams differ:
//! - `response.created` and `response.in_progress` go out with the first chunk,
//!   which names the model.
//! - Each kind of delta feeds an output item, numbered in order of appearance:
//!   `reasoning_content` a reasoning item with one summary part, text and
//!   `refusal` a message (one content part each, in the order they come), each
//!   tool call index a `function_call`. A delta of another item closes the open
//!   one (its `.done` events, then `output_item.done`), so items never overlap, as
//!   in OpenAI's streams; a tool call continued after another item began is
//!   refused as a malformed upstream stream.
//! - Empty deltas (the `""` of the first chunk) open nothing. A stream with no
//!   content still gets an empty message, as a completion does.
//! - [`StreamTranslator::finish`], once the upstream sent `[DONE]`, closes the
//!   open item and sends `response.completed`, or `response.incomplete` when the
//!   answer was cut short (`length`, `content_filter`), with the whole Response
//!   and the usage of the usage chunk.
//! - [`StreamTranslator::fail`] sends an `error` event, then `response.failed`
//!   with the output so far, its open item `incomplete`.

use std::collections::HashMap;

use serde_json::Map;

use super::{outcome, set_status, usage};
use crate::openai::types::{ChatCompletionChunk, CompletionUsage, ToolCallDelta};
use crate::responses::{
    Content, ContentPart, Echo, ErrorEventDetail, EventPayload, FunctionCall, Item, ItemStatus,
    Message, Reasoning, RefusalPart, Response, ResponseError, ResponseMeta, Role, Status,
    StreamEvent, SummaryPart,
};
use crate::translate::TranslateError;

/// The output item being streamed, and where.
#[derive(Debug, Clone)]
enum Open {
    Reasoning {
        output_index: usize,
        item_id: String,
    },
    Message {
        output_index: usize,
        item_id: String,
        /// The content part being streamed: its index and whether it is a
        /// refusal.
        part: Option<(usize, bool)>,
    },
    Call {
        output_index: usize,
        item_id: String,
    },
}

/// Chat chunks → Responses events, numbered from 0.
#[derive(Debug)]
pub struct StreamTranslator {
    meta: ResponseMeta,
    /// The Response so far: its output items as streamed up to now.
    response: Response,
    next_sequence: u64,
    started: bool,
    finished: bool,
    open: Option<Open>,
    /// The output index of each chat tool call index.
    calls: HashMap<u32, usize>,
    finish_reason: Option<String>,
    usage: Option<CompletionUsage>,
    /// Events made before a chunk was refused: they go out first with the next
    /// call, so that no sequence number is skipped.
    pending: Vec<StreamEvent>,
}

impl StreamTranslator {
    /// `meta`: the response's id, time and (until the upstream names its own)
    /// model; `echo`: `ResponsesRequest::echo`.
    pub fn new(meta: ResponseMeta, echo: Echo) -> Self {
        Self {
            response: Response::in_progress(&meta, echo),
            meta,
            next_sequence: 0,
            started: false,
            finished: false,
            open: None,
            calls: HashMap::new(),
            finish_reason: None,
            usage: None,
            pending: Vec::new(),
        }
    }

    /// The Response as streamed so far; after [`Self::finish`] or
    /// [`Self::fail`], the one the terminal event carried (what to store).
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// One upstream chunk → the events it produces. `Err` for a stream that breaks
    /// Chat's rules; end it with [`Self::fail`] (whose events then begin with
    /// those the refused chunk made before the fault). Nothing after the end.
    pub fn chunk(
        &mut self,
        chunk: ChatCompletionChunk,
    ) -> Result<Vec<StreamEvent>, TranslateError> {
        let mut out = std::mem::take(&mut self.pending);
        if self.finished {
            return Ok(out);
        }
        if !self.started && !chunk.model.is_empty() {
            self.response.model = chunk.model;
        }
        self.start(&mut out);
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return Ok(out);
        };
        let delta = choice.delta;
        if let Some(reasoning) = delta.reasoning_content.filter(|r| !r.is_empty()) {
            self.reasoning_delta(reasoning, &mut out);
        }
        if let Some(text) = delta.content.flatten().filter(|t| !t.is_empty()) {
            self.message_delta(text, false, &mut out);
        }
        if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
            self.message_delta(refusal, true, &mut out);
        }
        for call in delta.tool_calls.into_iter().flatten() {
            if let Err(e) = self.call_delta(call, &mut out) {
                self.pending = out;
                return Err(e);
            }
        }
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        Ok(out)
    }

    /// The upstream stream ended (`[DONE]`): the open item's `.done` events, then
    /// `response.completed` (or `response.incomplete`) with the whole Response.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = std::mem::take(&mut self.pending);
        if self.finished {
            return out;
        }
        self.finished = true;
        self.start(&mut out);
        if self.response.output.is_empty() {
            self.open_message(&mut out);
            self.open_part(false, &mut out);
        }
        let (status, incomplete_details) = outcome(self.finish_reason.as_deref());
        let open_status = if status == Status::Completed {
            ItemStatus::Completed
        } else {
            ItemStatus::Incomplete
        };
        self.close(open_status, &mut out);
        self.response.status = status;
        self.response.incomplete_details = incomplete_details;
        self.response.usage = self.usage.as_ref().map(usage);
        let response = Box::new(self.response.clone());
        self.emit(
            &mut out,
            if status == Status::Completed {
                EventPayload::Completed { response }
            } else {
                EventPayload::Incomplete { response }
            },
        );
        out
    }

    /// The stream failed (the upstream broke off or sent an error): an `error`
    /// event with `code` and `message`, then `response.failed`.
    pub fn fail(&mut self, code: &str, message: &str) -> Vec<StreamEvent> {
        let mut out = std::mem::take(&mut self.pending);
        if self.finished {
            return out;
        }
        self.finished = true;
        self.start(&mut out);
        if let Some(open) = self.open.take() {
            set_status(
                &mut self.response.output[open.output_index()],
                ItemStatus::Incomplete,
            );
        }
        self.emit(
            &mut out,
            EventPayload::Error {
                code: Some(code.to_owned()),
                message: message.to_owned(),
                param: None,
                error: ErrorEventDetail {
                    kind: code.to_owned(),
                    code: Some(code.to_owned()),
                    message: message.to_owned(),
                    param: None,
                },
            },
        );
        self.response.status = Status::Failed;
        self.response.error = Some(ResponseError {
            code: code.to_owned(),
            message: message.to_owned(),
        });
        self.response.usage = self.usage.as_ref().map(usage);
        let response = Box::new(self.response.clone());
        self.emit(&mut out, EventPayload::Failed { response });
        out
    }

    fn emit(&mut self, out: &mut Vec<StreamEvent>, payload: EventPayload) {
        out.push(StreamEvent {
            payload,
            sequence_number: self.next_sequence,
        });
        self.next_sequence += 1;
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = Box::new(self.response.clone());
        self.emit(
            out,
            EventPayload::Created {
                response: response.clone(),
            },
        );
        self.emit(out, EventPayload::InProgress { response });
    }

    /// Adds an item to the output and announces it; returns its index and id.
    fn add_item(
        &mut self,
        prefix: &str,
        item: impl FnOnce(String) -> Item,
        out: &mut Vec<StreamEvent>,
    ) -> (usize, String) {
        let output_index = self.response.output.len();
        let item_id = self.meta.item_id(prefix, output_index);
        let item = item(item_id.clone());
        self.response.output.push(item.clone());
        self.emit(out, EventPayload::OutputItemAdded { output_index, item });
        (output_index, item_id)
    }

    /// Reasoning text: into the open reasoning item's summary, or a new one's.
    fn reasoning_delta(&mut self, delta: String, out: &mut Vec<StreamEvent>) {
        let (output_index, item_id) = match &self.open {
            Some(Open::Reasoning {
                output_index,
                item_id,
            }) => (*output_index, item_id.clone()),
            _ => {
                self.close(ItemStatus::Completed, out);
                let (output_index, item_id) = self.add_item(
                    "rs",
                    |id| {
                        Item::Reasoning(Reasoning {
                            id: Some(id),
                            summary: Vec::new(),
                            encrypted_content: None,
                            extra: Map::new(),
                        })
                    },
                    out,
                );
                let part = SummaryPart::SummaryText {
                    text: String::new(),
                };
                if let Some(Item::Reasoning(r)) = self.response.output.get_mut(output_index) {
                    r.summary.push(part.clone());
                }
                self.emit(
                    out,
                    EventPayload::ReasoningSummaryPartAdded {
                        item_id: item_id.clone(),
                        output_index,
                        summary_index: 0,
                        part,
                    },
                );
                self.open = Some(Open::Reasoning {
                    output_index,
                    item_id: item_id.clone(),
                });
                (output_index, item_id)
            }
        };
        if let Some(Item::Reasoning(r)) = self.response.output.get_mut(output_index)
            && let Some(SummaryPart::SummaryText { text }) = r.summary.last_mut()
        {
            text.push_str(&delta);
        }
        self.emit(
            out,
            EventPayload::ReasoningSummaryTextDelta {
                item_id,
                output_index,
                summary_index: 0,
                delta,
            },
        );
    }

    /// Text or refusal: into the open message's part of that kind, or a new one.
    fn message_delta(&mut self, delta: String, refusal: bool, out: &mut Vec<StreamEvent>) {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(ItemStatus::Completed, out);
            self.open_message(out);
        }
        let Some((output_index, item_id, content_index)) = self.open_part(refusal, out) else {
            return;
        };
        match self
            .parts_mut(output_index)
            .and_then(|p| p.get_mut(content_index))
        {
            Some(ContentPart::OutputText(t)) => t.text.push_str(&delta),
            Some(ContentPart::Refusal(r)) => r.refusal.push_str(&delta),
            _ => {}
        }
        let payload = if refusal {
            EventPayload::RefusalDelta {
                item_id,
                output_index,
                content_index,
                delta,
            }
        } else {
            EventPayload::OutputTextDelta {
                item_id,
                output_index,
                content_index,
                delta,
                logprobs: Vec::new(),
            }
        };
        self.emit(out, payload);
    }

    /// A new assistant message, empty, in progress.
    fn open_message(&mut self, out: &mut Vec<StreamEvent>) {
        let (output_index, item_id) = self.add_item(
            "msg",
            |id| {
                Item::Message(Message {
                    id: Some(id),
                    status: Some(ItemStatus::InProgress),
                    role: Role::Assistant,
                    content: Content::Parts(Vec::new()),
                    extra: Map::new(),
                })
            },
            out,
        );
        self.open = Some(Open::Message {
            output_index,
            item_id,
            part: None,
        });
    }

    /// The open message's part of the kind asked for: the one streaming, or a new
    /// one after it. Returns the message's index and id and the part's index.
    fn open_part(
        &mut self,
        refusal: bool,
        out: &mut Vec<StreamEvent>,
    ) -> Option<(usize, String, usize)> {
        let Some(Open::Message {
            output_index,
            item_id,
            part,
        }) = &mut self.open
        else {
            return None;
        };
        let (output_index, item_id) = (*output_index, item_id.clone());
        if let Some((content_index, kind)) = *part
            && kind == refusal
        {
            return Some((output_index, item_id, content_index));
        }
        let previous = part.take();
        self.close_part(output_index, &item_id, previous, out);
        let part = if refusal {
            ContentPart::Refusal(RefusalPart {
                refusal: String::new(),
                extra: Map::new(),
            })
        } else {
            ContentPart::output_text("")
        };
        let parts = self.parts_mut(output_index)?;
        let content_index = parts.len();
        parts.push(part.clone());
        if let Some(Open::Message { part, .. }) = &mut self.open {
            *part = Some((content_index, refusal));
        }
        self.emit(
            out,
            EventPayload::ContentPartAdded {
                item_id: item_id.clone(),
                output_index,
                content_index,
                part,
            },
        );
        Some((output_index, item_id, content_index))
    }

    /// A message part's `.done` events.
    fn close_part(
        &mut self,
        output_index: usize,
        item_id: &str,
        part: Option<(usize, bool)>,
        out: &mut Vec<StreamEvent>,
    ) {
        let Some((content_index, _)) = part else {
            return;
        };
        let Some(part) = self
            .parts_mut(output_index)
            .and_then(|p| p.get(content_index))
            .cloned()
        else {
            return;
        };
        let item_id = item_id.to_owned();
        let done = match &part {
            ContentPart::Refusal(r) => EventPayload::RefusalDone {
                item_id: item_id.clone(),
                output_index,
                content_index,
                refusal: r.refusal.clone(),
            },
            ContentPart::OutputText(t) => EventPayload::OutputTextDone {
                item_id: item_id.clone(),
                output_index,
                content_index,
                text: t.text.clone(),
                logprobs: Vec::new(),
            },
            _ => return,
        };
        self.emit(out, done);
        self.emit(
            out,
            EventPayload::ContentPartDone {
                item_id,
                output_index,
                content_index,
                part,
            },
        );
    }

    /// A tool call's piece: the first opens a `function_call` item, the rest add
    /// to its arguments.
    fn call_delta(
        &mut self,
        call: ToolCallDelta,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), TranslateError> {
        let function = call.function.unwrap_or_default();
        let (output_index, item_id) = match self.calls.get(&call.index) {
            Some(&seen) => {
                let Some(Open::Call {
                    output_index,
                    item_id,
                }) = &self.open
                else {
                    return Err(continued(call.index));
                };
                if *output_index != seen {
                    return Err(continued(call.index));
                }
                let item_id = item_id.clone();
                if let Some(name) = function.name.filter(|n| !n.is_empty())
                    && let Some(Item::FunctionCall(c)) = self.response.output.get_mut(seen)
                {
                    c.name.push_str(&name);
                }
                (seen, item_id)
            }
            None => {
                self.close(ItemStatus::Completed, out);
                let call_id = call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| self.meta.item_id("call", self.response.output.len()));
                let name = function.name.clone().unwrap_or_default();
                let (output_index, item_id) = self.add_item(
                    "fc",
                    |id| {
                        Item::FunctionCall(FunctionCall {
                            id: Some(id),
                            call_id,
                            name,
                            arguments: String::new(),
                            status: Some(ItemStatus::InProgress),
                            extra: Map::new(),
                        })
                    },
                    out,
                );
                self.calls.insert(call.index, output_index);
                self.open = Some(Open::Call {
                    output_index,
                    item_id: item_id.clone(),
                });
                (output_index, item_id)
            }
        };
        if let Some(delta) = function.arguments.filter(|a| !a.is_empty()) {
            if let Some(Item::FunctionCall(c)) = self.response.output.get_mut(output_index) {
                c.arguments.push_str(&delta);
            }
            self.emit(
                out,
                EventPayload::FunctionCallArgumentsDelta {
                    item_id,
                    output_index,
                    delta,
                },
            );
        }
        Ok(())
    }

    /// The open item's `.done` events, then `output_item.done` with the item in
    /// `status`.
    fn close(&mut self, status: ItemStatus, out: &mut Vec<StreamEvent>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let output_index = open.output_index();
        match open {
            Open::Reasoning {
                output_index,
                item_id,
            } => {
                let part = match self.response.output.get(output_index) {
                    Some(Item::Reasoning(r)) => r.summary.first().cloned(),
                    _ => None,
                };
                if let Some(part) = part {
                    let SummaryPart::SummaryText { text } = &part;
                    self.emit(
                        out,
                        EventPayload::ReasoningSummaryTextDone {
                            item_id: item_id.clone(),
                            output_index,
                            summary_index: 0,
                            text: text.clone(),
                        },
                    );
                    self.emit(
                        out,
                        EventPayload::ReasoningSummaryPartDone {
                            item_id,
                            output_index,
                            summary_index: 0,
                            part,
                        },
                    );
                }
            }
            Open::Message {
                output_index,
                item_id,
                part,
            } => self.close_part(output_index, &item_id, part, out),
            Open::Call {
                output_index,
                item_id,
            } => {
                if let Some(Item::FunctionCall(c)) = self.response.output.get(output_index) {
                    let arguments = c.arguments.clone();
                    self.emit(
                        out,
                        EventPayload::FunctionCallArgumentsDone {
                            item_id,
                            output_index,
                            arguments,
                        },
                    );
                }
            }
        }
        let Some(item) = self.response.output.get_mut(output_index) else {
            return;
        };
        set_status(item, status);
        let item = item.clone();
        self.emit(out, EventPayload::OutputItemDone { output_index, item });
    }

    /// The content parts of the message at `output_index`.
    fn parts_mut(&mut self, output_index: usize) -> Option<&mut Vec<ContentPart>> {
        match self.response.output.get_mut(output_index) {
            Some(Item::Message(Message {
                content: Content::Parts(parts),
                ..
            })) => Some(parts),
            _ => None,
        }
    }
}

fn continued(index: u32) -> TranslateError {
    TranslateError::Upstream(format!(
        "tool call {index} continued after another output item began"
    ))
}

impl Open {
    fn output_index(&self) -> usize {
        match self {
            Self::Reasoning { output_index, .. }
            | Self::Message { output_index, .. }
            | Self::Call { output_index, .. } => *output_index,
        }
    }
}
