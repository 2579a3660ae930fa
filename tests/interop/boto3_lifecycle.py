"""Drives the custom key store lifecycle with boto3 against a KMS endpoint.

Usage: python boto3_lifecycle.py ENDPOINT_URL

Run by tests/interop.rs against `ckscheck serve` with the built-in fixtures
(specs/fixtures.example.toml) and SigV4 verification on. Credentials and region come from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION); the endpoint must
start with no custom key stores. Prints one line per check and exits 1 at the first failure.

Expectations that rest on ckscheck's default switches (not settled by the KMS documentation)
say so where they are checked.
"""

import datetime
import re
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ID_PATTERN = re.compile(r"^cks-[0-9a-f]{17}$")
POLL_SECONDS = 10.0
# KMS's default quota of custom key stores per account and Region, ckscheck's default too.
QUOTA = 10
UNKNOWN_ID = "cks-00000000000000000"


def pem(tag):
    return f"-----BEGIN CERTIFICATE-----\n{tag}\n-----END CERTIFICATE-----"


# Backends from the built-in fixtures.
HSM_A = dict(
    CloudHsmClusterId="cluster-healthyaaaaa",
    TrustAnchorCertificate=pem("MIIBhealthyA"),
    KeyStorePassword="kmsuser-pass-a",
)
HSM_B = dict(
    CloudHsmClusterId="cluster-healthybbbbb",
    TrustAnchorCertificate=pem("MIIBhealthyB"),
    KeyStorePassword="kmsuser-pass-b",
)
XKS_OK = dict(
    CustomKeyStoreType="EXTERNAL_KEY_STORE",
    XksProxyUriEndpoint="https://xks-ok.example.test",
    XksProxyUriPath="/ok/kms/xks/v1",
    XksProxyConnectivity="PUBLIC_ENDPOINT",
    XksProxyAuthenticationCredential={
        "AccessKeyId": "OKPROXYACCESSKEYAAAA",
        "RawSecretAccessKey": "okProxySecretAccessKeyAAAAAAAAAAAAAAAAAAAA1",
    },
)
# A proxy that accepts the store at create time but is unreachable when it connects.
XKS_DOWN = dict(
    CustomKeyStoreType="EXTERNAL_KEY_STORE",
    XksProxyUriEndpoint="https://xks-down.example.test",
    XksProxyUriPath="/down/kms/xks/v1",
    XksProxyConnectivity="PUBLIC_ENDPOINT",
    XksProxyAuthenticationCredential={
        "AccessKeyId": "DOWNPROXYACCESSKEYAA",
        "RawSecretAccessKey": "downProxySecretAccessKeyAAAAAAAAAAAAAAAAAA3",
    },
)
# Clusters that accept a Create (they only misbehave on connect); used to fill the quota.
FILLER_CLUSTERS = [
    ("cluster-healthyccccc", "MIIBhealthyC"),
    ("cluster-healthyddddd", "MIIBhealthyD"),
    ("cluster-nohsmsaaaaaa", "MIIBnohsms"),
    ("cluster-vanishedaaaa", "MIIBvanished"),
    ("cluster-lockedoutaaa", "MIIBlocked"),
    ("cluster-nosubnetaaaa", "MIIBsubnet"),
]

SECRET_VALUES = [
    HSM_A["KeyStorePassword"],
    HSM_B["KeyStorePassword"],
    XKS_OK["XksProxyAuthenticationCredential"]["RawSecretAccessKey"],
    XKS_DOWN["XksProxyAuthenticationCredential"]["RawSecretAccessKey"],
    "filler-password",
]
SECRET_KEYS = ("KeyStorePassword", "RawSecretAccessKey")

# total_max_attempts counts the first attempt: 1 means no retry. (retries={"max_attempts": 1}
# means ONE RETRY in botocore: two attempts for a retryable error such as LimitExceeded.)
NO_RETRY = Config(
    retries={"total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=15,
)

checks = 0


def ok(what):
    global checks
    checks += 1
    print(f"ok    {what}", flush=True)


def fail(what):
    print(f"FAIL  {what}", flush=True)
    sys.exit(1)


def check(cond, what, detail=""):
    if not cond:
        fail(f"{what}: {detail}" if detail else what)
    ok(what)


def no_secrets(value, where):
    """Fails if a response mentions a secret member name or a secret value anywhere."""
    text = repr(value)
    for key in SECRET_KEYS:
        if key in text:
            fail(f"{where}: the response contains {key}: {text}")
    for secret in SECRET_VALUES:
        if secret in text:
            fail(f"{where}: the response contains a secret value")


def call(client, op, **kwargs):
    """Calls an operation that must succeed; checks status, request ID and secrets."""
    try:
        response = getattr(client, op)(**kwargs)
    except ClientError as e:
        fail(f"{op}({brief(kwargs)}) failed: {e}")
    meta = response.get("ResponseMetadata", {})
    if meta.get("HTTPStatusCode") != 200:
        fail(f"{op}: HTTP status {meta.get('HTTPStatusCode')}, expected 200")
    if not meta.get("RequestId"):
        fail(f"{op}: no request ID (x-amzn-RequestId) in {meta}")
    no_secrets(response, op)
    return response


def brief(kwargs):
    shown = {k: ("***" if k in SECRET_KEYS or k.startswith("XksProxyAuth") else v) for k, v in kwargs.items()}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items())


def expect_error(what, code, client, op, modeled=True, **kwargs):
    """Calls an operation that must fail with `code` (HTTP 400, no retry)."""
    try:
        response = getattr(client, op)(**kwargs)
    except ClientError as e:
        got = e.response.get("Error", {}).get("Code")
        meta = e.response.get("ResponseMetadata", {})
        if got != code:
            fail(f"{what}: expected {code}, got {got}: {e}")
        if meta.get("HTTPStatusCode") != 400:
            fail(f"{what}: {code} came with HTTP {meta.get('HTTPStatusCode')}, expected 400")
        if meta.get("RetryAttempts", 0) != 0:
            fail(f"{what}: botocore retried {meta.get('RetryAttempts')} times despite no-retry config")
        if not e.response.get("Error", {}).get("Message"):
            fail(f"{what}: {code} has no message")
        if not meta.get("RequestId"):
            fail(f"{what}: {code} has no request ID")
        if modeled:
            cls = getattr(client.exceptions, code, None)
            if cls is None or not isinstance(e, cls):
                fail(f"{what}: {type(e).__name__} is not the modeled client.exceptions.{code}")
        no_secrets(e.response, what)
        ok(f"{what}: {code}, HTTP 400" + (f", raised as client.exceptions.{code}" if modeled else ""))
        return e
    fail(f"{what}: expected {code}, but {op} succeeded: {response}")


def stores_of(client, **kwargs):
    return call(client, "describe_custom_key_stores", **kwargs)["CustomKeyStores"]


def only_store(client, what, **kwargs):
    stores = stores_of(client, **kwargs)
    check(len(stores) == 1, f"{what} returns exactly one store", f"got {stores}")
    return stores[0]


def wait_for(client, ids, wanted, allowed):
    """Polls until every store in `ids` is in state `wanted`; other states must be in `allowed`."""
    deadline = time.monotonic() + POLL_SECONDS
    seen = {i: [] for i in ids}
    while True:
        states = {}
        for store in stores_of(client):
            if store["CustomKeyStoreId"] in ids:
                states[store["CustomKeyStoreId"]] = store["ConnectionState"]
        for i in ids:
            state = states.get(i)
            if not seen[i] or seen[i][-1] != state:
                seen[i].append(state)
            if state != wanted and state not in allowed:
                fail(f"waiting for {wanted}: store {i} is {state} (states seen: {seen[i]})")
        if all(states.get(i) == wanted for i in ids):
            ok(f"stores reached {wanted}; states seen: " + "; ".join(" -> ".join(map(str, s)) for s in seen.values()))
            return
        if time.monotonic() > deadline:
            fail(f"stores did not reach {wanted} within {POLL_SECONDS} s; states seen: {seen}")
        time.sleep(0.05)


def check_entry(store, kind, name):
    sid = store["CustomKeyStoreId"]
    label = f"{name} ({sid})"
    check(ID_PATTERN.match(sid) is not None, f"{label}: ID matches ^cks-[0-9a-f]{{17}}$", sid)
    check(store.get("CustomKeyStoreName") == name, f"{label}: name", store.get("CustomKeyStoreName"))
    created = store.get("CreationDate")
    check(
        isinstance(created, datetime.datetime)
        and created.tzinfo is not None
        and created.utcoffset() is not None,
        f"{label}: CreationDate is a timezone-aware datetime ({created!r})",
        repr(created),
    )
    skew = abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())
    check(skew < 300, f"{label}: CreationDate is within 5 minutes of now", f"{skew:.1f} s off")
    check("ConnectionErrorCode" not in store, f"{label}: no ConnectionErrorCode while not FAILED", store)
    if kind == "hsm":
        check(store.get("CustomKeyStoreType") == "AWS_CLOUDHSM", f"{label}: type AWS_CLOUDHSM", store)
        check(store.get("CloudHsmClusterId", "").startswith("cluster-"), f"{label}: CloudHsmClusterId present", store)
        check(store.get("TrustAnchorCertificate", "").startswith("-----BEGIN"), f"{label}: TrustAnchorCertificate present", store)
        check("XksProxyConfiguration" not in store, f"{label}: no XksProxyConfiguration on a CloudHSM store", store)
    else:
        check(store.get("CustomKeyStoreType") == "EXTERNAL_KEY_STORE", f"{label}: type EXTERNAL_KEY_STORE", store)
        check("CloudHsmClusterId" not in store, f"{label}: no CloudHsmClusterId on an external store", store)
        check("TrustAnchorCertificate" not in store, f"{label}: no TrustAnchorCertificate on an external store", store)
        xks = store.get("XksProxyConfiguration", {})
        expected = {
            "Connectivity": XKS_OK["XksProxyConnectivity"],
            "AccessKeyId": XKS_OK["XksProxyAuthenticationCredential"]["AccessKeyId"],
            "UriEndpoint": XKS_OK["XksProxyUriEndpoint"],
            "UriPath": XKS_OK["XksProxyUriPath"],
        }
        check(xks == expected, f"{label}: XksProxyConfiguration is exactly {sorted(expected)}", xks)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    endpoint = sys.argv[1]
    kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1", config=NO_RETRY)
    ok(f"boto3 {boto3.__version__} client for {endpoint}")

    check(stores_of(kms) == [], "the endpoint starts with no custom key stores")

    # --- Create ---------------------------------------------------------------------------
    names = {"hsm": "interop-boto3-hsm", "xks": "interop-boto3-xks", "hsm_b": "interop-boto3-hsm-b"}
    hsm = call(kms, "create_custom_key_store", CustomKeyStoreName=names["hsm"], **HSM_A)["CustomKeyStoreId"]
    check(ID_PATTERN.match(hsm) is not None, f"create CloudHSM store -> {hsm}", hsm)
    xks = call(kms, "create_custom_key_store", CustomKeyStoreName=names["xks"], **XKS_OK)["CustomKeyStoreId"]
    check(ID_PATTERN.match(xks) is not None, f"create external store -> {xks}", xks)
    hsm_b = call(kms, "create_custom_key_store", CustomKeyStoreName=names["hsm_b"], **HSM_B)["CustomKeyStoreId"]
    check(ID_PATTERN.match(hsm_b) is not None, f"create second CloudHSM store -> {hsm_b}", hsm_b)
    check(len({hsm, xks, hsm_b}) == 3, "store IDs are distinct")
    ids = {hsm: "hsm", xks: "xks", hsm_b: "hsm_b"}

    # --- Describe -------------------------------------------------------------------------
    listed = stores_of(kms)
    check(sorted(s["CustomKeyStoreId"] for s in listed) == sorted(ids), "describe (all) lists the three stores", listed)
    for store in listed:
        key = ids[store["CustomKeyStoreId"]]
        check_entry(store, "xks" if key == "xks" else "hsm", names[key])
        check(store["ConnectionState"] == "DISCONNECTED", f"{names[key]}: DISCONNECTED after create", store["ConnectionState"])
    by_name = only_store(kms, "describe by name", CustomKeyStoreName=names["xks"])
    check(by_name["CustomKeyStoreId"] == xks, "describe by name finds the external store", by_name)
    by_id = only_store(kms, "describe by ID", CustomKeyStoreId=hsm)
    check(by_id["CustomKeyStoreName"] == names["hsm"], "describe by ID finds the CloudHSM store", by_id)

    # --- Paginator --------------------------------------------------------------------------
    paginator = kms.get_paginator("describe_custom_key_stores")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 1}))
    for page in pages:
        no_secrets(page, "paginator page")
    seen = [s["CustomKeyStoreId"] for page in pages for s in page["CustomKeyStores"]]
    check(all(len(p["CustomKeyStores"]) <= 1 for p in pages), f"paginator PageSize=1: every page holds at most one store ({len(pages)} pages)")
    check(len(pages) >= 3, "paginator followed NextMarker over at least 3 pages", f"{len(pages)} pages")
    check(sorted(seen) == sorted(ids) and len(seen) == len(set(seen)), "paginator: each store appears exactly once", seen)
    check(
        all(p.get("Truncated") is True and p.get("NextMarker") for p in pages[:-1]),
        "paginator: every page but the last has Truncated=true and a NextMarker",
        [(p.get("Truncated"), p.get("NextMarker")) for p in pages],
    )
    check(
        not pages[-1].get("Truncated") and "NextMarker" not in pages[-1],
        "paginator: the last page is not truncated and has no NextMarker",
        pages[-1],
    )
    first = paginator.paginate(PaginationConfig={"PageSize": 1, "MaxItems": 1}).build_full_result()
    check(len(first["CustomKeyStores"]) == 1 and first.get("NextToken"), "paginator MaxItems=1 returns one store and a NextToken", first)
    rest = paginator.paginate(PaginationConfig={"PageSize": 1, "StartingToken": first["NextToken"]}).build_full_result()
    resumed = [s["CustomKeyStoreId"] for s in first["CustomKeyStores"] + rest["CustomKeyStores"]]
    check(sorted(resumed) == sorted(ids) and "NextToken" not in rest, "paginator resumes from the NextToken with the other stores, each once", resumed)

    # --- Errors while disconnected ----------------------------------------------------------
    try:
        kms.describe_custom_key_stores(CustomKeyStoreId=UNKNOWN_ID)
        fail("describe of an unknown ID succeeded")
    except kms.exceptions.CustomKeyStoreNotFoundException as e:
        check(e.response["Error"]["Code"] == "CustomKeyStoreNotFoundException", "unknown ID caught as client.exceptions.CustomKeyStoreNotFoundException")
        check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, "unknown ID: HTTP 400")
    expect_error("describe unknown name", "CustomKeyStoreNotFoundException", kms, "describe_custom_key_stores", CustomKeyStoreName="interop-no-such-store")
    expect_error("connect unknown ID", "CustomKeyStoreNotFoundException", kms, "connect_custom_key_store", CustomKeyStoreId=UNKNOWN_ID)
    expect_error(
        "duplicate name",
        "CustomKeyStoreNameInUseException",
        kms,
        "create_custom_key_store",
        CustomKeyStoreName=names["hsm"],
        CloudHsmClusterId="cluster-healthyccccc",
        TrustAnchorCertificate=pem("MIIBhealthyC"),
        KeyStorePassword="filler-password",
    )
    expect_error(
        "cluster already backing a store",
        "CloudHsmClusterInUseException",
        kms,
        "create_custom_key_store",
        CustomKeyStoreName="interop-boto3-cluster-again",
        **HSM_A,
    )
    expect_error(
        "wrong trust anchor",
        "IncorrectTrustAnchorException",
        kms,
        "create_custom_key_store",
        CustomKeyStoreName="interop-boto3-bad-anchor",
        CloudHsmClusterId="cluster-healthyddddd",
        TrustAnchorCertificate=pem("MIIBnotTheAnchor"),
        KeyStorePassword="filler-password",
    )
    expect_error(
        "proxy endpoint and path already in use",
        "XksProxyUriInUseException",
        kms,
        "create_custom_key_store",
        CustomKeyStoreName="interop-boto3-xks-again",
        **XKS_OK,
    )
    expect_error(
        "name and ID together (inferred error type)",
        "ValidationException",
        kms,
        "describe_custom_key_stores",
        modeled=False,
        CustomKeyStoreId=hsm,
        CustomKeyStoreName=names["hsm"],
    )
    expect_error("a marker the server did not issue", "InvalidMarkerException", kms, "describe_custom_key_stores", Marker="not-a-marker-we-issued")
    expect_error("disconnect a DISCONNECTED store", "CustomKeyStoreInvalidStateException", kms, "disconnect_custom_key_store", CustomKeyStoreId=hsm)

    session = boto3.session.Session()
    creds = session.get_credentials()
    wrong_secret = boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key + "-wrong",
        config=NO_RETRY,
    )
    expect_error("wrong secret key", "InvalidSignatureException", wrong_secret, "describe_custom_key_stores", modeled=False)
    unknown_key = boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDUNKNOWNTOTHESERVER",
        aws_secret_access_key=creds.secret_key,
        config=NO_RETRY,
    )
    expect_error("unknown access key", "UnrecognizedClientException", unknown_key, "describe_custom_key_stores", modeled=False)

    # --- Connect ----------------------------------------------------------------------------
    for sid in (hsm, xks):
        response = call(kms, "connect_custom_key_store", CustomKeyStoreId=sid)
        check(set(response) == {"ResponseMetadata"}, f"connect {sid} returns an empty result", response)
    wait_for(kms, [hsm, xks], "CONNECTED", {"CONNECTING"})
    # ckscheck default switch connect-when-connected=succeed (the ConnectCustomKeyStore page).
    call(kms, "connect_custom_key_store", CustomKeyStoreId=xks)
    ok("connect on a CONNECTED store succeeds (ckscheck default switch connect-when-connected=succeed)")
    expect_error("delete while CONNECTED", "CustomKeyStoreInvalidStateException", kms, "delete_custom_key_store", CustomKeyStoreId=hsm)
    expect_error(
        "change the password while CONNECTED",
        "CustomKeyStoreInvalidStateException",
        kms,
        "update_custom_key_store",
        CustomKeyStoreId=hsm,
        KeyStorePassword="filler-password",
    )

    # --- Update (rename while CONNECTED: ckscheck default switch update-while-connected=operation-page)
    renamed = {hsm: names["hsm"] + "-renamed", xks: names["xks"] + "-renamed"}
    for sid, new_name in renamed.items():
        response = call(kms, "update_custom_key_store", CustomKeyStoreId=sid, NewCustomKeyStoreName=new_name)
        check(set(response) == {"ResponseMetadata"}, f"rename {sid} to {new_name} while CONNECTED", response)
    for sid, new_name in renamed.items():
        store = only_store(kms, f"describe by new name {new_name}", CustomKeyStoreName=new_name)
        check(store["CustomKeyStoreId"] == sid and store["ConnectionState"] == "CONNECTED", f"{new_name}: same ID, still CONNECTED", store)
    expect_error("describe by the old name", "CustomKeyStoreNotFoundException", kms, "describe_custom_key_stores", CustomKeyStoreName=names["xks"])
    expect_error(
        "rename to a name in use",
        "CustomKeyStoreNameInUseException",
        kms,
        "update_custom_key_store",
        CustomKeyStoreId=xks,
        NewCustomKeyStoreName=names["hsm_b"],
    )

    # --- Disconnect -------------------------------------------------------------------------
    for sid in (hsm, xks):
        response = call(kms, "disconnect_custom_key_store", CustomKeyStoreId=sid)
        check(set(response) == {"ResponseMetadata"}, f"disconnect {sid} returns an empty result", response)
    wait_for(kms, [hsm, xks], "DISCONNECTED", {"DISCONNECTING"})

    # --- A connect that FAILS ------------------------------------------------------------------
    down = call(kms, "create_custom_key_store", CustomKeyStoreName="interop-boto3-xks-down", **XKS_DOWN)["CustomKeyStoreId"]
    call(kms, "connect_custom_key_store", CustomKeyStoreId=down)
    wait_for(kms, [down], "FAILED", {"CONNECTING"})
    store = only_store(kms, "describe the failed store", CustomKeyStoreId=down)
    check(store.get("ConnectionErrorCode") == "XKS_PROXY_NOT_REACHABLE", "unreachable proxy: FAILED with XKS_PROXY_NOT_REACHABLE", store)
    expect_error("connect a FAILED store", "CustomKeyStoreInvalidStateException", kms, "connect_custom_key_store", CustomKeyStoreId=down)
    call(kms, "disconnect_custom_key_store", CustomKeyStoreId=down)
    wait_for(kms, [down], "DISCONNECTED", {"DISCONNECTING"})
    store = only_store(kms, "describe the disconnected store", CustomKeyStoreId=down)
    check("ConnectionErrorCode" not in store, "disconnect clears the ConnectionErrorCode", store)

    # --- Quota: LimitExceeded is seen once (RetryAttempts 0; botocore retries it by default) ---
    fillers = []
    for n, (cluster, anchor) in enumerate(FILLER_CLUSTERS):
        if len(stores_of(kms)) >= QUOTA:
            break
        fillers.append(
            call(
                kms,
                "create_custom_key_store",
                CustomKeyStoreName=f"interop-boto3-filler-{n}",
                CloudHsmClusterId=cluster,
                TrustAnchorCertificate=pem(anchor),
                KeyStorePassword="filler-password",
            )["CustomKeyStoreId"]
        )
    check(len(stores_of(kms)) == QUOTA, f"{QUOTA} stores exist (the default quota)")
    expect_error(
        "create beyond the quota",
        "LimitExceededException",
        kms,
        "create_custom_key_store",
        CustomKeyStoreName="interop-boto3-one-too-many",
        CloudHsmClusterId="cluster-healthyccccc",
        TrustAnchorCertificate=pem("MIIBhealthyC"),
        KeyStorePassword="filler-password",
    )

    # --- Delete -----------------------------------------------------------------------------
    for sid in [hsm, xks, hsm_b, down] + fillers:
        response = call(kms, "delete_custom_key_store", CustomKeyStoreId=sid)
        if set(response) != {"ResponseMetadata"}:
            fail(f"delete {sid} returned {response}")
    ok(f"deleted all {4 + len(fillers)} stores")
    check(stores_of(kms) == [], "describe (all) is empty after the deletes")
    expect_error("describe a deleted store", "CustomKeyStoreNotFoundException", kms, "describe_custom_key_stores", CustomKeyStoreId=xks)
    expect_error("delete a deleted store", "CustomKeyStoreNotFoundException", kms, "delete_custom_key_store", CustomKeyStoreId=hsm)

    print(f"all {checks} checks passed", flush=True)


if __name__ == "__main__":
    main()
