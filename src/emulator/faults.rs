//! Planted faults: deliberate, realistic conformance bugs the emulator can be told to have, so
//! the harness can prove that its oracles catch them (`ckscheck serve --fault NAME`).
//!
//! Every fault lives in the emulator layer: it rewrites the request before the model sees it,
//! rewrites the answer after, or drives the model through its API (and, where a bug needs to
//! break an invariant the model keeps, through the hooks in `model/hooks.rs`). The model itself
//! stays correct, and an emulator without faults answers exactly as before.
//!
//! | name | the bug it plants |
//! |---|---|
//! | `overlapping-pages` | a truncated page's NextMarker resumes at the LAST item of that page, so it is listed twice (with Limit 1 the listing never advances) |
//! | `skipped-items` | NextMarker skips one store: the first item of the next page is never listed |
//! | `lying-truncated` | Truncated is false although NextMarker is present |
//! | `ignored-limit` | Limit is ignored: every page holds all stores and has no NextMarker |
//! | `name-and-id-accepted` | Describe with both CustomKeyStoreId and CustomKeyStoreName answers the ID's store instead of an error |
//! | `failed-without-error-code` | FAILED entries lack ConnectionErrorCode |
//! | `wrong-enum-case` | ConnectionState is lower-case (`connected`) |
//! | `wrong-error-type` | CustomKeyStoreNotFoundException is answered as ResourceNotFoundException |
//! | `client-errors-as-500` | every 400 error is answered with HTTP status 500 |
//! | `leaked-password` | Describe entries of CloudHSM stores include KeyStorePassword with the real password |
//! | `delete-while-connected` | Delete succeeds on a CONNECTED store (disconnects it instantly, then deletes) |
//! | `duplicate-names` | Create never raises CustomKeyStoreNameInUseException: two stores share a name |
//! | `invalid-marker-restarts` | a marker the emulator did not issue restarts the listing at the first page instead of InvalidMarkerException |
//! | `limit-out-of-range-accepted` | Limit below 1 or above 1000 is clamped and accepted instead of ValidationException |
//! | `dates-as-strings` | CreationDate is an ISO-8601 string instead of epoch seconds |
//! | `xks-config-on-cloudhsm` | CloudHSM entries carry an empty `XksProxyConfiguration: {}` |
//! | `unknown-id-empty-list` | Describe of an unknown ID or name answers 200 with an empty list |
//! | `connect-from-failed` | Connect on a FAILED store is accepted (it starts connecting again) instead of CustomKeyStoreInvalidStateException |
//! | `html-errors` | errors of UpdateCustomKeyStore come back as HTTP 500 `text/html` with an HTML page |
//! | `namespaced-error-type` | `__type` is `com.amazonaws.kms#Name` (a style deviation: WARNING only, not a failure) |
//! | `secret-in-error-message` | error messages echo the request's KeyStorePassword or RawSecretAccessKey |
//! | `missing-request-id` | answers carry no `x-amzn-RequestId` header |
//! | `wrong-content-type` | answers are `Content-Type: application/json` instead of `application/x-amz-json-1.1` |
//! | `quota-off-by-one` | Create allows one store more than the quota before LimitExceededException |
//! | `idempotent-disconnect` | Disconnect of a DISCONNECTED store succeeds instead of CustomKeyStoreInvalidStateException |
//! | `not-implemented` | the six custom key store operations are not implemented: each answers HTTP 500 `text/html` with a `NotImplementedError` page, as moto does (CreateKey works) |
//! | `length-in-bytes` | string lengths are counted in UTF-8 bytes, not characters: a valid value of multi-byte characters near its maximum is refused with ValidationException |
//! | `unknown-operation-501` | an unknown operation (a made-up name, no X-Amz-Target, another Content-Type) is answered HTTP 501 `InvalidAction` instead of 400 UnknownOperationException, as one open-source emulator does |
//! | `update-skips-validation` | UpdateCustomKeyStore skips the member constraint checks (length, pattern, enum, range, required, JSON type): e.g. a 257-character new name is taken |
//! | `type-required-not-enforced` | Create accepts a request missing members its type requires (AWS_CLOUDHSM with only a name, EXTERNAL_KEY_STORE with only a name and a type), as LocalStack and moto do |
//! | `cluster-change-while-connected` | Update with CloudHsmClusterId on a CONNECTED CloudHSM store succeeds and changes the cluster instead of CustomKeyStoreInvalidStateException |

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value, json};

use super::wire::{self, Body};
use crate::model::conditions::{When, condition};
use crate::model::{ConnectionState, KmsError, Millis, Model, Outcome, Store, StoreType};
use crate::spec::Spec;

/// A deliberate conformance bug the emulator can plant.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// A truncated page's NextMarker resumes at the last item of that page.
    OverlappingPages,
    /// NextMarker skips the first item of the next page.
    SkippedItems,
    /// Truncated is false although NextMarker is present.
    LyingTruncated,
    /// Limit is ignored: one page with every store.
    IgnoredLimit,
    /// Describe with both an ID and a name answers the ID's store.
    NameAndIdAccepted,
    /// FAILED entries lack ConnectionErrorCode.
    FailedWithoutErrorCode,
    /// ConnectionState is lower-case.
    WrongEnumCase,
    /// CustomKeyStoreNotFoundException is answered as ResourceNotFoundException.
    WrongErrorType,
    /// Every 400 error is answered with status 500.
    #[serde(rename = "client-errors-as-500")]
    ClientErrorsAs500,
    /// CloudHSM entries include the KeyStorePassword.
    LeakedPassword,
    /// Delete succeeds on a CONNECTED store.
    DeleteWhileConnected,
    /// Create never raises CustomKeyStoreNameInUseException.
    DuplicateNames,
    /// A marker the emulator did not issue restarts the listing.
    InvalidMarkerRestarts,
    /// Limit outside 1-1000 is clamped instead of rejected.
    LimitOutOfRangeAccepted,
    /// CreationDate is an ISO-8601 string.
    DatesAsStrings,
    /// CloudHSM entries carry an empty XksProxyConfiguration.
    XksConfigOnCloudhsm,
    /// Describe of an unknown ID or name answers an empty list.
    UnknownIdEmptyList,
    /// Connect on a FAILED store is accepted.
    ConnectFromFailed,
    /// Errors of UpdateCustomKeyStore are HTTP 500 HTML pages.
    HtmlErrors,
    /// `__type` carries the `com.amazonaws.kms#` namespace (a style deviation).
    NamespacedErrorType,
    /// Error messages echo the request's secrets.
    SecretInErrorMessage,
    /// No x-amzn-RequestId header.
    MissingRequestId,
    /// Content-Type application/json.
    WrongContentType,
    /// One store more than the quota is allowed.
    QuotaOffByOne,
    /// Disconnect of a DISCONNECTED store succeeds.
    IdempotentDisconnect,
    /// The custom key store operations answer moto's HTML NotImplementedError page.
    NotImplemented,
    /// String lengths are counted in UTF-8 bytes, not characters.
    LengthInBytes,
    /// Unknown operations are answered HTTP 501 InvalidAction.
    #[serde(rename = "unknown-operation-501")]
    UnknownOperation501,
    /// UpdateCustomKeyStore skips the member constraint checks.
    UpdateSkipsValidation,
    /// Create accepts a request missing members its type requires.
    TypeRequiredNotEnforced,
    /// Update of CloudHsmClusterId on a CONNECTED CloudHSM store succeeds.
    ClusterChangeWhileConnected,
}

impl Fault {
    /// Every fault, in the order of the table in the module documentation.
    pub const ALL: [Fault; 31] = [
        Fault::OverlappingPages,
        Fault::SkippedItems,
        Fault::LyingTruncated,
        Fault::IgnoredLimit,
        Fault::NameAndIdAccepted,
        Fault::FailedWithoutErrorCode,
        Fault::WrongEnumCase,
        Fault::WrongErrorType,
        Fault::ClientErrorsAs500,
        Fault::LeakedPassword,
        Fault::DeleteWhileConnected,
        Fault::DuplicateNames,
        Fault::InvalidMarkerRestarts,
        Fault::LimitOutOfRangeAccepted,
        Fault::DatesAsStrings,
        Fault::XksConfigOnCloudhsm,
        Fault::UnknownIdEmptyList,
        Fault::ConnectFromFailed,
        Fault::HtmlErrors,
        Fault::NamespacedErrorType,
        Fault::SecretInErrorMessage,
        Fault::MissingRequestId,
        Fault::WrongContentType,
        Fault::QuotaOffByOne,
        Fault::IdempotentDisconnect,
        Fault::NotImplemented,
        Fault::LengthInBytes,
        Fault::UnknownOperation501,
        Fault::UpdateSkipsValidation,
        Fault::TypeRequiredNotEnforced,
        Fault::ClusterChangeWhileConnected,
    ];

    /// The kebab-case name, as on the command line (`--fault NAME`) and in serde.
    pub fn name(self) -> &'static str {
        match self {
            Fault::OverlappingPages => "overlapping-pages",
            Fault::SkippedItems => "skipped-items",
            Fault::LyingTruncated => "lying-truncated",
            Fault::IgnoredLimit => "ignored-limit",
            Fault::NameAndIdAccepted => "name-and-id-accepted",
            Fault::FailedWithoutErrorCode => "failed-without-error-code",
            Fault::WrongEnumCase => "wrong-enum-case",
            Fault::WrongErrorType => "wrong-error-type",
            Fault::ClientErrorsAs500 => "client-errors-as-500",
            Fault::LeakedPassword => "leaked-password",
            Fault::DeleteWhileConnected => "delete-while-connected",
            Fault::DuplicateNames => "duplicate-names",
            Fault::InvalidMarkerRestarts => "invalid-marker-restarts",
            Fault::LimitOutOfRangeAccepted => "limit-out-of-range-accepted",
            Fault::DatesAsStrings => "dates-as-strings",
            Fault::XksConfigOnCloudhsm => "xks-config-on-cloudhsm",
            Fault::UnknownIdEmptyList => "unknown-id-empty-list",
            Fault::ConnectFromFailed => "connect-from-failed",
            Fault::HtmlErrors => "html-errors",
            Fault::NamespacedErrorType => "namespaced-error-type",
            Fault::SecretInErrorMessage => "secret-in-error-message",
            Fault::MissingRequestId => "missing-request-id",
            Fault::WrongContentType => "wrong-content-type",
            Fault::QuotaOffByOne => "quota-off-by-one",
            Fault::IdempotentDisconnect => "idempotent-disconnect",
            Fault::NotImplemented => "not-implemented",
            Fault::LengthInBytes => "length-in-bytes",
            Fault::UnknownOperation501 => "unknown-operation-501",
            Fault::UpdateSkipsValidation => "update-skips-validation",
            Fault::TypeRequiredNotEnforced => "type-required-not-enforced",
            Fault::ClusterChangeWhileConnected => "cluster-change-while-connected",
        }
    }

    /// One line: the bug it plants.
    pub fn describe(self) -> &'static str {
        match self {
            Fault::OverlappingPages => {
                "a truncated page's NextMarker resumes at the last item of that page, which is listed twice"
            }
            Fault::SkippedItems => {
                "NextMarker skips one store: the first item of the next page is never listed"
            }
            Fault::LyingTruncated => "Truncated is false although NextMarker is present",
            Fault::IgnoredLimit => "Limit is ignored: every page has all stores and no NextMarker",
            Fault::NameAndIdAccepted => {
                "Describe with both CustomKeyStoreId and CustomKeyStoreName returns the ID's store instead of an error"
            }
            Fault::FailedWithoutErrorCode => "FAILED entries lack ConnectionErrorCode",
            Fault::WrongEnumCase => "ConnectionState is lower-case (connected)",
            Fault::WrongErrorType => {
                "CustomKeyStoreNotFoundException is answered as ResourceNotFoundException"
            }
            Fault::ClientErrorsAs500 => "every 400 error is answered with HTTP status 500",
            Fault::LeakedPassword => {
                "Describe entries of CloudHSM stores include KeyStorePassword with the real password"
            }
            Fault::DeleteWhileConnected => {
                "Delete succeeds on a CONNECTED store (disconnects it instantly, then deletes)"
            }
            Fault::DuplicateNames => {
                "CustomKeyStoreNameInUseException is never raised on Create: two stores share a name"
            }
            Fault::InvalidMarkerRestarts => {
                "a marker the emulator did not issue restarts the listing instead of InvalidMarkerException"
            }
            Fault::LimitOutOfRangeAccepted => {
                "Limit 0 or over 1000 is accepted (clamped) instead of ValidationException"
            }
            Fault::DatesAsStrings => "CreationDate is an ISO-8601 string, not epoch seconds",
            Fault::XksConfigOnCloudhsm => {
                "CloudHSM entries carry an empty XksProxyConfiguration: {}"
            }
            Fault::UnknownIdEmptyList => {
                "Describe of an unknown ID or name answers 200 with an empty list"
            }
            Fault::ConnectFromFailed => {
                "Connect on a FAILED store is accepted instead of CustomKeyStoreInvalidStateException"
            }
            Fault::HtmlErrors => {
                "errors of UpdateCustomKeyStore come back as HTTP 500 text/html with an HTML page"
            }
            Fault::NamespacedErrorType => {
                "__type is com.amazonaws.kms#Name (style deviation: a warning, not a failure)"
            }
            Fault::SecretInErrorMessage => {
                "error messages echo the request's KeyStorePassword or RawSecretAccessKey"
            }
            Fault::MissingRequestId => "answers carry no x-amzn-RequestId header",
            Fault::WrongContentType => {
                "answers are Content-Type application/json, not application/x-amz-json-1.1"
            }
            Fault::QuotaOffByOne => {
                "Create allows one store more than the quota before LimitExceededException"
            }
            Fault::IdempotentDisconnect => {
                "Disconnect of a DISCONNECTED store succeeds instead of CustomKeyStoreInvalidStateException"
            }
            Fault::NotImplemented => {
                "the six custom key store operations are not implemented: each answers HTTP 500 text/html with a NotImplementedError page, as moto does (CreateKey works)"
            }
            Fault::LengthInBytes => {
                "string lengths are counted in UTF-8 bytes, not characters: a valid value of multi-byte characters near its maximum is refused with ValidationException"
            }
            Fault::UnknownOperation501 => {
                "an unknown operation (a made-up name, no X-Amz-Target, another Content-Type) is answered HTTP 501 InvalidAction instead of 400 UnknownOperationException"
            }
            Fault::UpdateSkipsValidation => {
                "UpdateCustomKeyStore skips the member constraint checks (length, pattern, enum, range, required, JSON type)"
            }
            Fault::TypeRequiredNotEnforced => {
                "Create accepts a request missing members its type requires (e.g. AWS_CLOUDHSM with only a name)"
            }
            Fault::ClusterChangeWhileConnected => {
                "Update with CloudHsmClusterId on a CONNECTED CloudHSM store succeeds and changes the cluster"
            }
        }
    }

    /// True for a fault the harness must only warn about (a style deviation, not a failure).
    pub fn warning_only(self) -> bool {
        self == Fault::NamespacedErrorType
    }

    /// The fault with this kebab-case name; the error lists the valid names.
    pub fn parse(name: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault {name:?}; valid faults: {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        Fault::parse(s)
    }
}

/// The marker `overlapping-pages` issues to resume at the first store (no marker the model
/// issues can, since it resumes after a store).
const RESTART_MARKER: &str = "ckscheck-fault-restart";

const DESCRIBE: &str = "DescribeCustomKeyStores";

/// The error `unknown-operation-501` answers otherwise.
const UNKNOWN_OPERATION: &str = "UnknownOperationException";

/// The operations `not-implemented` answers with moto's page.
const CUSTOM_KEY_STORE_OPERATIONS: [&str; 6] = [
    "CreateCustomKeyStore",
    DESCRIBE,
    "ConnectCustomKeyStore",
    "DisconnectCustomKeyStore",
    "UpdateCustomKeyStore",
    "DeleteCustomKeyStore",
];

/// The error `not-implemented` gives instead of applying a request; [`Planted::error`] answers
/// it (as every error of those operations) with the HTML page.
const NOT_IMPLEMENTED_ERROR: &str = "NotImplementedError";

/// The faults planted in one emulator, applied around the model.
#[derive(Debug, Clone, Default)]
pub(crate) struct Planted(Vec<Fault>);

impl Planted {
    /// These faults (duplicates are harmless).
    pub(crate) fn new(faults: &[Fault]) -> Planted {
        let mut faults = faults.to_vec();
        faults.sort();
        faults.dedup();
        Planted(faults)
    }

    fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// Applies one request to the model, with the planted faults around it.
    pub(crate) fn apply(
        &self,
        model: &mut Model,
        now: Millis,
        operation: &str,
        body: &[u8],
    ) -> Outcome {
        if self.0.is_empty() {
            return model.apply(now, operation, body);
        }
        if self.has(Fault::NotImplemented) && CUSTOM_KEY_STORE_OPERATIONS.contains(&operation) {
            // The model never sees the request: nothing changes.
            return Err(KmsError {
                name: NOT_IMPLEMENTED_ERROR.into(),
                message: format!("The {operation} action has not been implemented"),
            });
        }
        // Requests that are not a JSON object go to the model untouched: it rejects them.
        let input = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(input)) => input,
            _ => return model.apply(now, operation, body),
        };
        if self.has(Fault::LengthInBytes)
            && let Some((member, max)) =
                crate::oracle::measures::over_in_bytes(operation, &Value::Object(input.clone()))
        {
            return Err(KmsError {
                name: "ValidationException".into(),
                message: format!(
                    "1 validation error detected: Value at '{member}' failed to satisfy \
                     constraint: Member must have length less than or equal to {max}"
                ),
            });
        }
        let mut outcome = match operation {
            DESCRIBE => self.describe(model, now, input.clone(), body),
            "CreateCustomKeyStore" => self.create(model, now, input.clone(), body),
            "ConnectCustomKeyStore" => self.connect(model, now, &input, body),
            "DisconnectCustomKeyStore" => self.disconnect(model, now, &input, body),
            "DeleteCustomKeyStore" => self.delete(model, now, &input, body),
            "UpdateCustomKeyStore" => self.update(model, now, &input, body),
            _ => model.apply(now, operation, body),
        };
        if self.has(Fault::SecretInErrorMessage)
            && let Err(e) = &mut outcome
        {
            let secrets = [
                input
                    .get("KeyStorePassword")
                    .map(|v| ("KeyStorePassword", v)),
                input
                    .get("XksProxyAuthenticationCredential")
                    .and_then(|c| c.get("RawSecretAccessKey"))
                    .map(|v| ("RawSecretAccessKey", v)),
            ];
            for (member, value) in secrets.into_iter().flatten() {
                if let Some(value) = value.as_str() {
                    e.message.push_str(&format!(" (request {member}={value})"));
                }
            }
        }
        outcome
    }

    fn describe(
        &self,
        model: &mut Model,
        now: Millis,
        mut input: Map<String, Value>,
        body: &[u8],
    ) -> Outcome {
        let mut rewritten = false;
        if self.has(Fault::NameAndIdAccepted)
            && input.contains_key("CustomKeyStoreId")
            && input.remove("CustomKeyStoreName").is_some()
        {
            rewritten = true;
        }
        if self.has(Fault::OverlappingPages)
            && input.get("Marker").and_then(Value::as_str) == Some(RESTART_MARKER)
        {
            input.remove("Marker");
            rewritten = true;
        }
        if self.has(Fault::IgnoredLimit) {
            input.insert("Limit".into(), json!(1000));
            rewritten = true;
        } else if self.has(Fault::LimitOutOfRangeAccepted)
            && let Some(limit) = input.get("Limit")
        {
            let clamped = match (limit.as_i64(), limit.as_u64()) {
                (Some(n), _) if n < 1 => Some(1),
                (Some(n), _) if n > 1000 => Some(1000),
                (None, Some(_)) => Some(1000),
                _ => None,
            };
            if let Some(clamped) = clamped {
                input.insert("Limit".into(), json!(clamped));
                rewritten = true;
            }
        }
        let mut outcome = if rewritten {
            call(model, now, DESCRIBE, &input)
        } else {
            model.apply(now, DESCRIBE, body)
        };
        if self.has(Fault::InvalidMarkerRestarts)
            && is_error(&outcome, "InvalidMarkerException")
            && input.remove("Marker").is_some()
        {
            outcome = call(model, now, DESCRIBE, &input);
        }
        if self.has(Fault::UnknownIdEmptyList)
            && is_error(&outcome, "CustomKeyStoreNotFoundException")
        {
            outcome = Ok(json!({ "CustomKeyStores": [], "Truncated": false }));
        }
        let mut answer = outcome?;
        self.page_faults(model, now, &input, &mut answer);
        self.entry_faults(model, now, &mut answer);
        Ok(answer)
    }

    /// Rewrites NextMarker and Truncated of a page answered to `input`.
    fn page_faults(
        &self,
        model: &mut Model,
        now: Millis,
        input: &Map<String, Value>,
        answer: &mut Value,
    ) {
        let Some(next) = answer
            .get("NextMarker")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return;
        };
        let page_len = answer["CustomKeyStores"].as_array().map_or(0, Vec::len);
        if self.has(Fault::OverlappingPages) {
            // The marker that resumes at this page's last item: the NextMarker of the same
            // request one item shorter, or for a page of one the marker that led here.
            let overlap = if page_len >= 2 {
                let mut shorter = input.clone();
                shorter.insert("Limit".into(), json!(page_len - 1));
                call(model, now, DESCRIBE, &shorter)
                    .ok()
                    .and_then(|a| a["NextMarker"].as_str().map(str::to_string))
            } else {
                Some(
                    input
                        .get("Marker")
                        .and_then(Value::as_str)
                        .unwrap_or(RESTART_MARKER)
                        .to_string(),
                )
            };
            if let Some(marker) = overlap {
                answer["NextMarker"] = json!(marker);
            }
        } else if self.has(Fault::SkippedItems) {
            // Past the next page's first item: the NextMarker of a one-item page there.
            let mut one = input.clone();
            one.insert("Marker".into(), json!(next));
            one.insert("Limit".into(), json!(1));
            let skipped = call(model, now, DESCRIBE, &one)
                .ok()
                .and_then(|a| a["NextMarker"].as_str().map(str::to_string));
            let object = answer
                .as_object_mut()
                .expect("a Describe answer is an object");
            match skipped {
                Some(marker) => {
                    object.insert("NextMarker".into(), json!(marker));
                }
                None => {
                    // The skipped store was the last one: the listing ends here.
                    object.remove("NextMarker");
                    object.insert("Truncated".into(), json!(false));
                }
            }
        }
        if self.has(Fault::LyingTruncated) && answer.get("NextMarker").is_some() {
            answer["Truncated"] = json!(false);
        }
    }

    /// Rewrites the entries of a Describe answer.
    fn entry_faults(&self, model: &mut Model, now: Millis, answer: &mut Value) {
        let Some(entries) = answer
            .get_mut("CustomKeyStores")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        let stores = if self.has(Fault::LeakedPassword) {
            model.stores(now)
        } else {
            Vec::new()
        };
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            let cloudhsm =
                entry.get("CustomKeyStoreType").and_then(Value::as_str) == Some("AWS_CLOUDHSM");
            if cloudhsm && self.has(Fault::LeakedPassword) {
                let id = entry.get("CustomKeyStoreId").and_then(Value::as_str);
                let password = stores
                    .iter()
                    .find(|s| Some(s.id.as_str()) == id)
                    .and_then(|s| s.cloudhsm.as_ref())
                    .map(|h| h.password.0.clone());
                if let Some(password) = password {
                    entry.insert("KeyStorePassword".into(), json!(password));
                }
            }
            if cloudhsm && self.has(Fault::XksConfigOnCloudhsm) {
                entry.insert("XksProxyConfiguration".into(), json!({}));
            }
            let state = entry
                .get("ConnectionState")
                .and_then(Value::as_str)
                .map(str::to_string);
            if self.has(Fault::FailedWithoutErrorCode) && state.as_deref() == Some("FAILED") {
                entry.remove("ConnectionErrorCode");
            }
            if self.has(Fault::WrongEnumCase)
                && let Some(state) = state
            {
                entry.insert("ConnectionState".into(), json!(state.to_lowercase()));
            }
            if self.has(Fault::DatesAsStrings)
                && let Some(seconds) = entry.get("CreationDate").and_then(Value::as_f64)
            {
                let ms = (seconds * 1000.0).round() as i64;
                entry.insert("CreationDate".into(), json!(iso8601(ms)));
            }
        }
    }

    fn create(
        &self,
        model: &mut Model,
        now: Millis,
        mut input: Map<String, Value>,
        body: &[u8],
    ) -> Outcome {
        // duplicate-names: create under a free temporary name, then take the wanted one.
        let mut rename_to = None;
        if self.has(Fault::DuplicateNames)
            && let Some(name) = input.get("CustomKeyStoreName").and_then(Value::as_str)
        {
            let stores = model.stores(now);
            let taken = |n: &str| stores.iter().any(|s| s.name == n);
            if taken(name) {
                let name = name.to_string();
                let temporary = (1..)
                    .map(|n| format!("ckscheck-fault-duplicate-{n}"))
                    .find(|t| !taken(t))
                    .expect("some temporary name is free");
                input.insert("CustomKeyStoreName".into(), json!(temporary));
                rename_to = Some(name);
            }
        }
        let create = |model: &mut Model| match rename_to {
            Some(_) => call(model, now, "CreateCustomKeyStore", &input),
            None => model.apply(now, "CreateCustomKeyStore", body),
        };
        let mut outcome = create(model);
        if self.has(Fault::QuotaOffByOne) && is_error(&outcome, "LimitExceededException") {
            let quota = model.config().quota;
            model.hook_set_quota(quota + 1);
            outcome = create(model);
            model.hook_set_quota(quota);
        }
        if self.has(Fault::TypeRequiredNotEnforced)
            && is_error(&outcome, "ValidationException")
            && lacks_type_required(&input)
        {
            outcome = model.hook_create_without_required(now, &Value::Object(input.clone()));
        }
        if let (Some(name), Ok(answer)) = (&rename_to, &outcome)
            && let Some(id) = answer["CustomKeyStoreId"].as_str()
        {
            model.hook_rename(id, name);
        }
        outcome
    }

    fn connect(
        &self,
        model: &mut Model,
        now: Millis,
        input: &Map<String, Value>,
        body: &[u8],
    ) -> Outcome {
        let outcome = model.apply(now, "ConnectCustomKeyStore", body);
        if !self.has(Fault::ConnectFromFailed)
            || !is_error(&outcome, "CustomKeyStoreInvalidStateException")
        {
            return outcome;
        }
        let Some(store) = target(model, now, input).filter(|s| s.state == ConnectionState::Failed)
        else {
            return outcome;
        };
        // Treat FAILED as DISCONNECTED; a connect that fails all the same changes nothing.
        model.hook_set_state(&store.id, ConnectionState::Disconnected, None);
        let retry = model.apply(now, "ConnectCustomKeyStore", body);
        if retry.is_err() {
            model.hook_set_state(&store.id, store.state, store.error_code.clone());
        }
        retry
    }

    fn disconnect(
        &self,
        model: &mut Model,
        now: Millis,
        input: &Map<String, Value>,
        body: &[u8],
    ) -> Outcome {
        let outcome = model.apply(now, "DisconnectCustomKeyStore", body);
        if self.has(Fault::IdempotentDisconnect)
            && is_error(&outcome, "CustomKeyStoreInvalidStateException")
            && target(model, now, input).is_some_and(|s| s.state == ConnectionState::Disconnected)
        {
            return Ok(json!({}));
        }
        outcome
    }

    fn delete(
        &self,
        model: &mut Model,
        now: Millis,
        input: &Map<String, Value>,
        body: &[u8],
    ) -> Outcome {
        let outcome = model.apply(now, "DeleteCustomKeyStore", body);
        if !self.has(Fault::DeleteWhileConnected)
            || !is_error(&outcome, "CustomKeyStoreInvalidStateException")
        {
            return outcome;
        }
        let Some(store) =
            target(model, now, input).filter(|s| s.state == ConnectionState::Connected)
        else {
            return outcome;
        };
        // Disconnect at once, then delete; a delete refused all the same changes nothing.
        model.hook_set_state(&store.id, ConnectionState::Disconnected, None);
        let retry = model.apply(now, "DeleteCustomKeyStore", body);
        if retry.is_err() {
            model.hook_set_state(&store.id, store.state, store.error_code.clone());
        }
        retry
    }

    fn update(
        &self,
        model: &mut Model,
        now: Millis,
        input: &Map<String, Value>,
        body: &[u8],
    ) -> Outcome {
        let outcome = model.apply(now, "UpdateCustomKeyStore", body);
        if self.has(Fault::UpdateSkipsValidation) && is_error(&outcome, "ValidationException") {
            return model.hook_update_unvalidated(now, &Value::Object(input.clone()));
        }
        if !self.has(Fault::ClusterChangeWhileConnected)
            || !is_error(&outcome, "CustomKeyStoreInvalidStateException")
            || !input.contains_key("CloudHsmClusterId")
        {
            return outcome;
        }
        let Some(store) = target(model, now, input)
            .filter(|s| s.state == ConnectionState::Connected && s.cloudhsm.is_some())
        else {
            return outcome;
        };
        // Update as if DISCONNECTED, and stay CONNECTED whatever the answer.
        model.hook_set_state(&store.id, ConnectionState::Disconnected, None);
        let retry = model.apply(now, "UpdateCustomKeyStore", body);
        model.hook_set_state(&store.id, store.state, store.error_code.clone());
        retry
    }

    /// A success answer, with the planted header faults.
    pub(crate) fn success(&self, body: &Value, request_id: &str) -> Response<Body> {
        self.headers(wire::success(body, request_id))
    }

    /// An error answer for `operation` (when known), with the status the spec gives the error
    /// unless `status` says otherwise, and the planted error faults.
    pub(crate) fn error(
        &self,
        operation: Option<&str>,
        status: Option<StatusCode>,
        e: &KmsError,
        request_id: &str,
    ) -> Response<Body> {
        if self.0.is_empty() {
            return match status {
                Some(status) => wire::error_with_status(status, e, request_id),
                None => wire::error(e, request_id),
            };
        }
        let mut status = status.unwrap_or_else(|| {
            StatusCode::from_u16(Spec::kms().error_status(&e.name))
                .unwrap_or(StatusCode::BAD_REQUEST)
        });
        if self.has(Fault::NotImplemented)
            && let Some(operation) = operation.filter(|op| CUSTOM_KEY_STORE_OPERATIONS.contains(op))
        {
            return self.headers(not_implemented_page(operation, request_id));
        }
        if self.has(Fault::HtmlErrors) && operation == Some("UpdateCustomKeyStore") {
            return self.headers(html_error(request_id));
        }
        let mut e = e.clone();
        if self.has(Fault::UnknownOperation501) && e.name == UNKNOWN_OPERATION {
            e.name = "InvalidAction".into();
            status = StatusCode::NOT_IMPLEMENTED;
        }
        if self.has(Fault::WrongErrorType) && e.name == "CustomKeyStoreNotFoundException" {
            e.name = "ResourceNotFoundException".into();
        }
        if self.has(Fault::ClientErrorsAs500) && status == StatusCode::BAD_REQUEST {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        let response = if self.has(Fault::NamespacedErrorType) {
            let namespaced = KmsError {
                name: format!("com.amazonaws.kms#{}", e.name),
                message: e.message.clone(),
            };
            let mut response = wire::error_with_status(status, &namespaced, request_id);
            // The header keeps the bare name: only the body deviates.
            if let Ok(v) = HeaderValue::from_str(&e.name) {
                response.headers_mut().insert("x-amzn-errortype", v);
            }
            response
        } else {
            wire::error_with_status(status, &e, request_id)
        };
        self.headers(response)
    }

    fn headers(&self, mut response: Response<Body>) -> Response<Body> {
        let headers = response.headers_mut();
        if self.has(Fault::MissingRequestId) {
            headers.remove("x-amzn-requestid");
        }
        if self.has(Fault::WrongContentType) {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
        }
        response
    }
}

/// The operation an `X-Amz-Target` header names, whatever its prefix.
pub(crate) fn target_operation(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once('.'))
        .map(|(_, op)| op)
}

/// A framework's default error page, as a misconfigured front end serves it.
fn html_error(request_id: &str) -> Response<Body> {
    let page = "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n\
                <body><h1>Internal Server Error</h1>\n\
                <p>The server encountered an internal error and was unable to complete your request.</p>\n\
                </body></html>\n";
    html_500(page.to_string(), request_id)
}

/// The page moto's server answers for an action it has not implemented.
fn not_implemented_page(operation: &str, request_id: &str) -> Response<Body> {
    let page = format!(
        "<!doctype html><html><head><title>500 Internal Server Error</title></head>\
         <body><h1>Internal Server Error</h1><p>NotImplementedError: The {operation} action \
         has not been implemented</p></body></html>"
    );
    html_500(page, request_id)
}

/// An HTTP 500 `text/html` answer with this page; the request ID header stays, so that the
/// page is the fault's only deviation.
fn html_500(page: String, request_id: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(page)));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// Applies a rewritten request.
fn call(model: &mut Model, now: Millis, operation: &str, input: &Map<String, Value>) -> Outcome {
    let body = serde_json::to_vec(input).expect("a JSON object serializes");
    model.apply(now, operation, &body)
}

/// Whether a Create request lacks a member its type requires (the conditions table).
fn lacks_type_required(input: &Map<String, Value>) -> bool {
    let store_type = match input.get("CustomKeyStoreType").and_then(Value::as_str) {
        Some("EXTERNAL_KEY_STORE") => StoreType::ExternalKeyStore,
        _ => StoreType::AwsCloudhsm,
    };
    condition("CreateCustomKeyStore", When::RequestType(store_type))
        .is_some_and(|c| c.requires.iter().any(|m| !input.contains_key(*m)))
}

fn is_error(outcome: &Outcome, name: &str) -> bool {
    matches!(outcome, Err(e) if e.name == name)
}

/// The store a request's CustomKeyStoreId names, as of `now`.
fn target(model: &mut Model, now: Millis, input: &Map<String, Value>) -> Option<Store> {
    let id = input.get("CustomKeyStoreId")?.as_str()?;
    model.stores(now).into_iter().find(|s| s.id == id)
}

/// Milliseconds since the epoch as ISO-8601 UTC, e.g. `2018-09-22T02:18:38.431Z`.
fn iso8601(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::emulator::{EmulatorConfig, start_on_loopback};
    use crate::model::ModelConfig;

    /// One POST over a fresh connection: status, Content-Type and body.
    async fn post(
        addr: std::net::SocketAddr,
        operation: &str,
        body: &Value,
    ) -> (u16, String, String) {
        let body = body.to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: TrentService.{operation}\r\n\
             Content-Type: application/x-amz-json-1.1\r\nAuthorization: test\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connects");
        stream.write_all(request.as_bytes()).await.expect("sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        let content_type = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        (status, content_type, body.to_string())
    }

    #[tokio::test]
    async fn not_implemented_answers_the_store_operations_with_moto_pages_only() {
        let config = EmulatorConfig {
            model: ModelConfig {
                connect_delay_ms: 0,
                ..ModelConfig::default()
            },
            faults: vec![Fault::NotImplemented],
            ..EmulatorConfig::default()
        };
        let emulator = start_on_loopback(config).await.expect("starts");
        let addr = emulator.addr;
        let create = json!({
            "CustomKeyStoreName": "ni",
            "CloudHsmClusterId": "cluster-healthyaaaaa",
            "TrustAnchorCertificate": "-----BEGIN CERTIFICATE-----\nMIIBhealthyA\n-----END CERTIFICATE-----",
            "KeyStorePassword": "kmsuser-pass-a",
        });
        let id = json!({ "CustomKeyStoreId": "cks-00000000000000000" });
        let requests = [
            (DESCRIBE, json!({})),
            ("CreateCustomKeyStore", create),
            ("ConnectCustomKeyStore", id.clone()),
            ("DisconnectCustomKeyStore", id.clone()),
            ("UpdateCustomKeyStore", id.clone()),
            ("DeleteCustomKeyStore", id),
        ];
        for (operation, body) in requests {
            let (status, content_type, page) = post(addr, operation, &body).await;
            assert_eq!(status, 500, "{operation}: {page}");
            assert_eq!(content_type, "text/html; charset=utf-8", "{operation}");
            let said =
                format!("NotImplementedError: The {operation} action has not been implemented");
            assert!(
                page.starts_with("<!doctype html>") && page.contains(&said),
                "{page}"
            );
        }
        // Nothing reached the model; CreateKey and the rest work as usual.
        let (status, _, created) = post(addr, "CreateKey", &json!({})).await;
        assert_eq!(status, 200, "{created}");
        let created: Value = serde_json::from_str(&created).expect("JSON");
        assert!(created["KeyMetadata"]["KeyId"].is_string(), "{created}");
        let unknown = json!({ "CustomKeyStoreId": "cks-00000000000000000" });
        let (status, content_type, refused) = post(addr, "CreateKey", &unknown).await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(content_type, "application/x-amz-json-1.1");
        assert!(
            refused.contains("CustomKeyStoreNotFoundException"),
            "{refused}"
        );
        let stores = emulator
            .app
            .regions
            .lock()
            .expect("not poisoned")
            .model(None)
            .expect("the home region")
            .stores(0);
        assert!(stores.is_empty(), "{stores:?}");
        emulator.stop().await;
    }

    #[test]
    fn not_implemented_is_registered() {
        assert_eq!(Fault::parse("not-implemented"), Ok(Fault::NotImplemented));
        assert!(Fault::ALL.contains(&Fault::NotImplemented));
        assert!(!Fault::NotImplemented.warning_only());
    }

    #[test]
    fn iso8601_formats_utc_with_milliseconds() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_537_582_718_431), "2018-09-22T02:18:38.431Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }
}
