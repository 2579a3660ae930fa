//! Members required or forbidden by a store's type or by its proxy connectivity: one table,
//! read by the model when it judges a request and by the rule inventory when it lists rules.
//!
//! KMS documents which members each type and connectivity takes; the error for breaking it is
//! not documented, and `ValidationException` is inferred.

use serde_json::Value;

use super::store::StoreType;

/// `XksProxyConnectivity` for a proxy reached through a VPC endpoint service.
pub const VPC_ENDPOINT_SERVICE: &str = "VPC_ENDPOINT_SERVICE";
/// `XksProxyConnectivity` for a proxy on the public internet.
pub const PUBLIC_ENDPOINT: &str = "PUBLIC_ENDPOINT";

const CLOUDHSM_MEMBERS: &[&str] = &[
    "CloudHsmClusterId",
    "TrustAnchorCertificate",
    "KeyStorePassword",
];
/// The CloudHSM members UpdateCustomKeyStore has (it takes no trust anchor).
const CLOUDHSM_UPDATE_MEMBERS: &[&str] = &["CloudHsmClusterId", "KeyStorePassword"];
const XKS_MEMBERS: &[&str] = &[
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyAuthenticationCredential",
    "XksProxyConnectivity",
];
const XKS_REQUIRED: &[&str] = &[
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyAuthenticationCredential",
    "XksProxyConnectivity",
];
const VPC_MEMBERS: &[&str] = &[
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
];

/// What a condition depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// `CustomKeyStoreType` in the request (absent means `AWS_CLOUDHSM`).
    RequestType(StoreType),
    /// The type of the store the request names.
    StoreType(StoreType),
    /// The `XksProxyConnectivity` in effect: the request's, else the store's.
    Connectivity(&'static str),
}

impl When {
    /// The condition as rule ids spell it, e.g. `CustomKeyStoreType=AWS_CLOUDHSM`.
    pub fn label(self) -> String {
        match self {
            When::RequestType(t) => format!("CustomKeyStoreType={}", t.as_str()),
            When::StoreType(t) => format!("store={}", t.as_str()),
            When::Connectivity(c) => format!("XksProxyConnectivity={c}"),
        }
    }
}

/// Members an operation requires or forbids under one condition.
#[derive(Debug, Clone, Copy)]
pub struct Condition {
    /// The operation.
    pub operation: &'static str,
    /// When it applies.
    pub when: When,
    /// Members that must be present (after the store's own settings, for an Update).
    pub requires: &'static [&'static str],
    /// Members that must be absent from the request.
    pub forbids: &'static [&'static str],
}

/// Every conditional requirement and prohibition, in the order the model checks them.
pub const CONDITIONS: &[Condition] = &[
    Condition {
        operation: "CreateCustomKeyStore",
        when: When::RequestType(StoreType::AwsCloudhsm),
        requires: CLOUDHSM_MEMBERS,
        forbids: XKS_MEMBERS,
    },
    Condition {
        operation: "CreateCustomKeyStore",
        when: When::RequestType(StoreType::ExternalKeyStore),
        requires: XKS_REQUIRED,
        forbids: CLOUDHSM_MEMBERS,
    },
    Condition {
        operation: "CreateCustomKeyStore",
        when: When::Connectivity(VPC_ENDPOINT_SERVICE),
        requires: &["XksProxyVpcEndpointServiceName"],
        forbids: &[],
    },
    Condition {
        operation: "CreateCustomKeyStore",
        when: When::Connectivity(PUBLIC_ENDPOINT),
        requires: &[],
        forbids: VPC_MEMBERS,
    },
    Condition {
        operation: "UpdateCustomKeyStore",
        when: When::StoreType(StoreType::AwsCloudhsm),
        requires: &[],
        forbids: XKS_MEMBERS,
    },
    Condition {
        operation: "UpdateCustomKeyStore",
        when: When::StoreType(StoreType::ExternalKeyStore),
        requires: &[],
        forbids: CLOUDHSM_UPDATE_MEMBERS,
    },
    Condition {
        operation: "UpdateCustomKeyStore",
        when: When::Connectivity(VPC_ENDPOINT_SERVICE),
        requires: &["XksProxyVpcEndpointServiceName"],
        forbids: &[],
    },
    Condition {
        operation: "UpdateCustomKeyStore",
        when: When::Connectivity(PUBLIC_ENDPOINT),
        requires: &[],
        forbids: VPC_MEMBERS,
    },
];

/// The condition of an operation for this case, if the table has one.
pub fn condition(operation: &str, when: When) -> Option<&'static Condition> {
    CONDITIONS
        .iter()
        .find(|c| c.operation == operation && c.when == when)
}

/// The first member of `members` the request holds.
pub(super) fn first_present(input: &Value, members: &[&'static str]) -> Option<&'static str> {
    members.iter().copied().find(|m| input.get(*m).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    #[test]
    fn every_member_the_table_names_is_a_member_of_its_operation() {
        let spec = Spec::kms();
        for c in CONDITIONS {
            let input = spec.shape(&spec.operations[c.operation].input);
            for m in c.requires.iter().chain(c.forbids) {
                assert!(
                    input.members.contains_key(*m),
                    "{} has no member {m}",
                    c.operation
                );
            }
        }
    }
}
