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
