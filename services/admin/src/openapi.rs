//! The OpenAPI document of the HTTP face, generated from the handlers'
//! annotations and the request and response types (`GET /api/v1/openapi.json`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::health::{KeyState, ProviderHealth, TargetState};
use crate::keys::{CreatedKey, Key, KeyInput};
use crate::mappings::{Mapping, MappingInput, Target};
use crate::providers::{Provider, ProviderInput, Timeouts};
use crate::{connection, http, login};

#[derive(OpenApi)]
#[openapi(
    info(title = "aiprox admin API", description = "Logs, usage statistics, providers, model mappings and client keys. Every call needs `Authorization: Bearer <AIPROX_ADMIN_TOKEN>`, or the web UI's session cookie (from `POST /api/v1/session`; writes by cookie also need the `x-aiprox-csrf` header). The same calls exist over gRPC: `aiprox.v1.AdminService`."),
    paths(
        http::list_logs, http::get_log, http::get_media, http::summary, http::series,
        http::list_providers, http::provider_health, http::list_prices, http::set_price, http::delete_price, http::create_provider, http::get_provider, http::update_provider, http::delete_provider,
        http::list_mappings, http::create_mapping, http::get_mapping, http::update_mapping, http::delete_mapping,
        http::list_keys, http::create_key, http::revoke_key, http::set_key_limits, http::test_provider,
        login::state, login::login, login::logout,
    ),
    components(schemas(
        http::ErrorBody, http::ErrorDetail, http::LogPage, http::LogItem, http::LogDetail, http::FailedAttempt, http::MediaLink,
        http::Usage, http::Percentiles, http::SeriesPoint,
        config_model::KeyLimits, config_model::Budget, config_model::BudgetPeriod, config_model::prices::Price, config_model::prices::Vendor, crate::prices::Prices, crate::prices::PriceOverride, Provider, ProviderInput, Timeouts, ProviderHealth, TargetState, KeyState, Mapping, MappingInput, Target, Key, KeyInput, CreatedKey,
        connection::ConnectionTest, login::LoginInput, login::SessionState,
    )),
    modifiers(&AdminToken),
    security(("admin_token" = [])),
)]
pub struct ApiDoc;

struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> Result<String, serde_json::Error> {
    ApiDoc::openapi().to_pretty_json()
}
