//! Rule ids: how the inventory names a rule, and how an oracle names the rule it judged.
//!
//! - `member/<Operation>/<member path>/<kind>`: a member constraint (`length-min`,
//!   `length-max`, `pattern`, `enum`, `range-min`, `range-max`, `json-type`, `required`);
//! - `type/<Operation>/<condition>/requires|forbids/<Member>`: a member required or forbidden
//!   by the store's type or connectivity ([`crate::model::conditions`]);
//! - `exclusive/<Operation>/<A+B>`: an exclusive group;
//! - `state/<Operation>/<STATE>`: a cell of the state table;
//! - `error/<Operation>/<Error>`: a declared error the reference predicts;
//! - `protocol/<rule>`: unknown operation, malformed JSON, wrong content type, missing target.

/// The id of a member constraint.
pub fn member(operation: &str, path: &str, kind: &str) -> String {
    format!("member/{operation}/{path}/{kind}")
}

/// The id of a state-table cell.
pub fn state(operation: &str, state: &str) -> String {
    format!("state/{operation}/{state}")
}

/// The id of a declared error of an operation.
pub fn error(operation: &str, error: &str) -> String {
    format!("error/{operation}/{error}")
}

/// The id of an exclusive group of an operation.
pub fn exclusive(operation: &str, members: &[String]) -> String {
    format!("exclusive/{operation}/{}", members.join("+"))
}

/// The id of a protocol rule.
pub fn protocol(rule: &str) -> String {
    format!("protocol/{rule}")
}

/// The inventory id of the rule a generated request was built to break, from its operation
/// and its expectation's rule (which names no operation), e.g. `NewCustomKeyStoreName/length-max`
/// on UpdateCustomKeyStore → `member/UpdateCustomKeyStore/NewCustomKeyStoreName/length-max`.
/// None for rules the inventory does not hold (e.g. `Marker/not-issued`, judged as a declared
/// error).
pub fn of_expectation(operation: &str, rule: &str) -> Option<String> {
    if rule.starts_with("protocol/") {
        return Some(rule.to_string());
    }
    if rule.starts_with("body/") {
        return Some(protocol("malformed-json"));
    }
    for prefix in ["type/", "exclusive/"] {
        if let Some(rest) = rule.strip_prefix(prefix) {
            return Some(format!("{prefix}{operation}/{rest}"));
        }
    }
    let (path, kind) = rule.rsplit_once('/')?;
    const KINDS: [&str; 8] = [
        "length-min",
        "length-max",
        "pattern",
        "enum",
        "range-min",
        "range-max",
        "json-type",
        "required",
    ];
    KINDS.contains(&kind).then(|| member(operation, path, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_map_to_inventory_ids() {
        let update = "UpdateCustomKeyStore";
        assert_eq!(
            of_expectation(update, "NewCustomKeyStoreName/length-max").as_deref(),
            Some("member/UpdateCustomKeyStore/NewCustomKeyStoreName/length-max")
        );
        assert_eq!(
            of_expectation(
                "CreateCustomKeyStore",
                "XksProxyAuthenticationCredential.AccessKeyId/pattern"
            )
            .as_deref(),
            Some(
                "member/CreateCustomKeyStore/XksProxyAuthenticationCredential.AccessKeyId/pattern"
            )
        );
        assert_eq!(
            of_expectation(update, "type/store=AWS_CLOUDHSM/forbids/XksProxyUriPath").as_deref(),
            Some("type/UpdateCustomKeyStore/store=AWS_CLOUDHSM/forbids/XksProxyUriPath")
        );
        assert_eq!(
            of_expectation("DescribeCustomKeyStores", "body/truncated-json").as_deref(),
            Some("protocol/malformed-json")
        );
        assert_eq!(
            of_expectation("Nope", "protocol/unknown-operation").as_deref(),
            Some("protocol/unknown-operation")
        );
        assert_eq!(
            of_expectation("DescribeCustomKeyStores", "Marker/not-issued"),
            None
        );
    }
}
