//! Recorded vendor payloads (see `fixtures/README.md` and `fixtures/SOURCES.md`).

macro_rules! fixture {
    ($name:ident, $path:literal) => {
        pub const $name: &str = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/",
            $path
        ));
    };
}

pub mod openai {
    fixture!(CHAT_RESPONSE_BASIC, "openai/chat_response_basic.json");
    fixture!(
        CHAT_RESPONSE_TOOL_CALLS,
        "openai/chat_response_tool_calls.json"
    );
    fixture!(
        CHAT_RESPONSE_AFTER_TOOL_RESULT,
        "openai/chat_response_after_tool_result.json"
    );
    fixture!(CHAT_STREAM_BASIC, "openai/chat_stream_basic.sse");
    fixture!(CHAT_STREAM_TOOL_CALLS, "openai/chat_stream_tool_calls.sse");
    fixture!(
        CHAT_STREAM_PARALLEL_TOOL_CALLS,
        "openai/chat_stream_parallel_tool_calls.sse"
    );
    fixture!(EMBEDDINGS_RESPONSE, "openai/embeddings_response.json");
    fixture!(
        EMBEDDINGS_RESPONSE_FLOAT,
        "openai/embeddings_response_float_truncated.json"
    );
    fixture!(MODELS_RESPONSE, "openai/models_response.json");
    fixture!(ERROR_AUTH_401, "openai/error_auth_401.json");
    fixture!(ERROR_INVALID_REQUEST, "openai/error_invalid_request.json");
    fixture!(
        ERROR_MODEL_NOT_FOUND_404,
        "openai/error_model_not_found_404.json"
    );
    fixture!(ERROR_RATE_LIMIT_429, "openai/error_rate_limit_429.json");
    fixture!(
        ERROR_INSUFFICIENT_QUOTA_429,
        "openai/error_insufficient_quota_429.json"
    );
}

pub mod anthropic {
    fixture!(
        COUNT_TOKENS_RESPONSE,
        "anthropic/count_tokens_response.json"
    );
    fixture!(
        COUNT_TOKENS_RESPONSE_TOOLS,
        "anthropic/count_tokens_response_tools_thinking.json"
    );
    fixture!(ERROR_AUTH_401, "anthropic/error_auth_401.json");
    fixture!(
        ERROR_INVALID_REQUEST,
        "anthropic/error_invalid_request.json"
    );
    fixture!(ERROR_NOT_FOUND_404, "anthropic/error_not_found_404.json");
    fixture!(ERROR_OVERLOADED, "anthropic/error_overloaded.json");
    fixture!(ERROR_RATE_LIMIT_429, "anthropic/error_rate_limit_429.json");
    fixture!(RESPONSE_BASIC, "anthropic/messages_response_basic.json");
    fixture!(
        RESPONSE_BASIC_2026,
        "anthropic/messages_response_basic_2026.json"
    );
    fixture!(
        RESPONSE_TOOL_USE,
        "anthropic/messages_response_tool_use.json"
    );
    fixture!(
        RESPONSE_AFTER_TOOL_RESULT,
        "anthropic/messages_response_after_tool_result.json"
    );
    fixture!(STREAM_BASIC, "anthropic/messages_stream_basic.sse");
    fixture!(STREAM_ERROR, "anthropic/messages_stream_error.sse");
    fixture!(STREAM_MINIMAL, "anthropic/messages_stream_minimal.sse");
    fixture!(
        STREAM_TEXT_THEN_TOOL_USE,
        "anthropic/messages_stream_text_then_tool_use.sse"
    );
    fixture!(STREAM_THINKING, "anthropic/messages_stream_thinking.sse");
    fixture!(STREAM_TOOL_USE, "anthropic/messages_stream_tool_use.sse");

    /// A recorded body by file name, for `Behavior::fixture`.
    pub fn by_name(name: &str) -> Option<&'static str> {
        Some(match name {
            "messages_response_basic.json" => RESPONSE_BASIC,
            "messages_response_basic_2026.json" => RESPONSE_BASIC_2026,
            "messages_response_tool_use.json" => RESPONSE_TOOL_USE,
            "messages_response_after_tool_result.json" => RESPONSE_AFTER_TOOL_RESULT,
            "messages_stream_basic.sse" => STREAM_BASIC,
            "messages_stream_minimal.sse" => STREAM_MINIMAL,
            "messages_stream_text_then_tool_use.sse" => STREAM_TEXT_THEN_TOOL_USE,
            "messages_stream_thinking.sse" => STREAM_THINKING,
            "messages_stream_tool_use.sse" => STREAM_TOOL_USE,
            _ => return None,
        })
    }
}

pub mod responses {
    fixture!(
        RESPONSE_BASIC,
        "openai-responses/responses_response_basic.json"
    );
    fixture!(
        RESPONSE_FUNCTION_CALL,
        "openai-responses/responses_response_function_call.json"
    );
    fixture!(
        RESPONSE_AFTER_FUNCTION_CALL_OUTPUT,
        "openai-responses/responses_response_after_function_call_output.json"
    );
    fixture!(
        RESPONSE_JSON_SCHEMA,
        "openai-responses/responses_response_json_schema.json"
    );
    fixture!(STREAM_TEXT, "openai-responses/responses_stream_text.sse");
    fixture!(
        STREAM_REASONING_FUNCTION_CALL,
        "openai-responses/responses_stream_reasoning_function_call.sse"
    );
}
