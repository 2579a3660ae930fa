//! Reproducers: a shrunk history as shell lines a person can paste (AWS CLI and curl), and the
//! `ckscheck` command that replays a failing check.
//!
//! The lines are built from the history alone, so they hold no secret: masked secrets become
//! shell variables the reader sets (`"$KEY_STORE_PASSWORD"`), AWS credentials are always
//! `$AWS_ACCESS_KEY_ID` / `$AWS_SECRET_ACCESS_KEY` references. The ID a create got back is
//! captured into `STORE_N` when a later request uses it, so the lines replay against an
//! endpoint that issues other IDs. Retries are left out, and follow-up pages and settle polls
//! are summarised in a comment.

use serde_json::Value;

use crate::history::{Exchange, History, SECRET_TOKEN};
use crate::spec::Spec;

/// Every JSON request of `history` as an `aws kms` command (raw bodies get a comment pointing
/// at the curl lines), preceded by comments naming the variables to set.
pub fn aws_cli_commands(history: &History, endpoint: &str, region: &str) -> Vec<String> {
    render(history, endpoint, region, Tool::Cli)
}

/// Every request of `history` (raw bodies too) as a SigV4-signing `curl` command, preceded by
/// comments naming the variables to set.
pub fn curl_commands(history: &History, endpoint: &str, region: &str) -> Vec<String> {
    render(history, endpoint, region, Tool::Curl)
}

/// The command that replays a check with the run's seed (the whole run, without `--filter`,
/// when `check` is empty); `endpoint` is None for the embedded emulator.
pub fn replay_hint(seed: u64, check: &str, endpoint: Option<&str>) -> String {
    let mut hint = format!("ckscheck run --seed {seed}");
    if !check.is_empty() {
        hint.push_str(" --filter ");
        hint.push_str(&sh_word(check));
    }
    if let Some(url) = endpoint {
        hint.push_str(" --endpoint-url ");
        hint.push_str(&sh_word(url));
    }
    hint
}

/// The AWS CLI command name of an operation: `DescribeCustomKeyStores` →
/// `describe-custom-key-stores`.
pub fn cli_name(operation: &str) -> String {
    let chars: Vec<char> = operation.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Cli,
    Curl,
}

/// A piece of a shell word: literal text (quoted when written) or a variable reference.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A shell variable standing for a masked secret.
struct SecretVar {
    token: String,
    base: String,
    var: String,
    about: String,
}

/// What to write for one exchange, or a comment.
enum Item<'a> {
    Command {
        head: &'a Exchange,
        last: &'a Exchange,
        concurrent: bool,
    },
    Comment(String),
}

/// Collapsed follow-ups of the command before.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Follow {
    Pages,
    Polls,
}

/// Writes the comment for the collapsed follow-ups, if any.
fn flush(items: &mut Vec<Item<'_>>, pending: &mut Option<(Follow, usize)>) {
    match pending.take() {
        Some((Follow::Pages, n)) => items.push(Item::Comment(format!(
            "# ... then follow NextMarker: {n} more page(s), each with \"Marker\" set to the \
             NextMarker of the page before"
        ))),
        Some((Follow::Polls, n)) => items.push(Item::Comment(format!(
            "# ... then repeat until ConnectionState is neither CONNECTING nor DISCONNECTING \
             ({n} more poll(s))"
        ))),
        None => {}
    }
}

fn same_call(a: &Exchange, b: &Exchange) -> bool {
    a.sequence == b.sequence && a.step == b.step && a.operation == b.operation
}

/// Splits the history into commands and comments: retries dropped, follow-up pages and settle
/// polls summarised.
fn plan(history: &History) -> Vec<Item<'_>> {
    let ex = &history.exchanges;
    let mut items = Vec::new();
    let mut pending: Option<(Follow, usize)> = None;
    let multi_sequence = ex.windows(2).any(|w| w[0].sequence != w[1].sequence);
    let mut i = 0;
    // The last head (first attempt) seen in the current step, with its final attempt.
    let mut prev: Option<(&Exchange, &Exchange)> = None;
    while i < ex.len() {
        let head = &ex[i];
        let mut j = i + 1;
        while j < ex.len() && ex[j].attempt > 1 && same_call(head, &ex[j]) {
            j += 1;
        }
        let last = &ex[j - 1];
        i = j;
        let same_step = prev.filter(|(h, _)| h.sequence == head.sequence && h.step == head.step);
        if prev.is_none_or(|(h, _)| h.sequence != head.sequence) && multi_sequence {
            flush(&mut items, &mut pending);
            items.push(Item::Comment(format!("# sequence {}", head.sequence)));
        }
        let follow = same_step.and_then(|(p_head, p_last)| {
            if head.operation != "DescribeCustomKeyStores" || head.raw || p_head.raw {
                return None;
            }
            let marker = head.request.get("Marker").and_then(Value::as_str);
            let next = p_last.body().get("NextMarker").and_then(Value::as_str);
            if marker.is_some() && marker == next {
                return Some(Follow::Pages);
            }
            let overlaps = head.started_ms < p_last.started_ms + p_last.elapsed_ms;
            (!overlaps && head.request == p_head.request).then_some(Follow::Polls)
        });
        prev = Some((head, last));
        match follow {
            Some(kind) => {
                pending = match pending {
                    Some((k, n)) if k == kind => Some((k, n + 1)),
                    other => {
                        let mut other = other;
                        flush(&mut items, &mut other);
                        Some((kind, 1))
                    }
                };
            }
            None => {
                flush(&mut items, &mut pending);
                items.push(Item::Command {
                    head,
                    last,
                    concurrent: same_step.is_some(),
                });
            }
        }
    }
    flush(&mut items, &mut pending);
    items
}

/// The variable name for a secret under member `key`.
fn secret_base(key: Option<&str>) -> String {
    match key {
        Some("KeyStorePassword") => "KEY_STORE_PASSWORD".into(),
        Some("RawSecretAccessKey") => "XKS_SECRET_ACCESS_KEY".into(),
        Some(k) => {
            let snake = cli_name(k).replace('-', "_").to_ascii_uppercase();
            let clean: String = snake
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
                "SECRET".into()
            } else {
                clean
            }
        }
        None => "SECRET".into(),
    }
}

fn walk_strings<'v>(
    value: &'v Value,
    key: Option<&'v str>,
    f: &mut dyn FnMut(&'v str, Option<&'v str>),
) {
    match value {
        Value::String(s) => f(s, key),
        Value::Array(items) => items.iter().for_each(|v| walk_strings(v, key, f)),
        Value::Object(map) => map.iter().for_each(|(k, v)| walk_strings(v, Some(k), f)),
        _ => {}
    }
}

/// The variables for the masked secrets of the commands, in order of first use.
fn secret_vars(items: &[Item<'_>]) -> Vec<SecretVar> {
    let mut vars: Vec<SecretVar> = Vec::new();
    for item in items {
        let Item::Command { head, .. } = item else {
            continue;
        };
        if head.raw {
            continue;
        }
        walk_strings(&head.request, None, &mut |s, key| {
            if !s.starts_with(SECRET_TOKEN) {
                return;
            }
            let base = secret_base(key);
            if vars.iter().any(|v| v.token == s && v.base == base) {
                return;
            }
            let inner = s
                .strip_prefix(SECRET_TOKEN)
                .and_then(|t| t.strip_prefix('='))
                .and_then(|t| t.strip_suffix(']'));
            let (stem, about) = match inner.map(|t| t.split_once(':').unwrap_or((t, ""))) {
                Some(("cluster", id)) => (
                    base.clone(),
                    format!("the kmsuser password of CloudHSM cluster {id}"),
                ),
                Some(("xks", endpoint)) => (
                    base.clone(),
                    format!("the secret access key of the XKS proxy at {endpoint}"),
                ),
                Some(("other", _)) => (
                    format!("WRONG_{base}"),
                    "a well-formed value that is not the right secret (the run sent one)".into(),
                ),
                _ => (
                    base.clone(),
                    "the secret the run sent (ckscheck does not record it)".into(),
                ),
            };
            let mut var = stem.clone();
            let mut n = 1;
            while vars.iter().any(|v| v.var == var) {
                n += 1;
                var = format!("{stem}_{n}");
            }
            vars.push(SecretVar {
                token: s.to_string(),
                base,
                var,
                about,
            });
        });
    }
    vars
}

/// The IDs created by printed commands that later commands use, with their variable.
fn store_vars(items: &[Item<'_>]) -> Vec<(String, String)> {
    let commands: Vec<(&Exchange, &Exchange)> = items
        .iter()
        .filter_map(|i| match i {
            Item::Command { head, last, .. } => Some((*head, *last)),
            Item::Comment(_) => None,
        })
        .collect();
    let mut stores = Vec::new();
    for (k, (head, last)) in commands.iter().enumerate() {
        if head.operation != "CreateCustomKeyStore" || last.status() != Some(200) {
            continue;
        }
        let Some(id) = last.body().get("CustomKeyStoreId").and_then(Value::as_str) else {
            continue;
        };
        if id.is_empty() || stores.iter().any(|(known, _)| known == id) {
            continue;
        }
        let used_later = commands[k + 1..].iter().any(|(h, _)| match &h.request {
            Value::String(s) if h.raw => s.contains(id),
            v => {
                let mut hit = false;
                walk_strings(v, None, &mut |s, _| hit |= s == id);
                hit
            }
        });
        if used_later {
            let var = format!("STORE_{}", stores.len() + 1);
            stores.push((id.to_string(), var));
        }
    }
    stores
}

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

fn marker(i: usize) -> String {
    format!("{OPEN}{i}{CLOSE}")
}

/// Splits text carrying `marker(i)` sentinels into pieces.
fn split_marked(text: &str, vars: &[String]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len_utf8()..];
        let Some(end) = after.find(CLOSE) else { break };
        let Some(var) = after[..end].parse::<usize>().ok().and_then(|i| vars.get(i)) else {
            break;
        };
        if start > 0 {
            pieces.push(Piece::Text(rest[..start].to_string()));
        }
        pieces.push(Piece::Var(var.clone()));
        rest = &after[end + CLOSE.len_utf8()..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    pieces
}

/// The body of an exchange as shell pieces, secrets and known store IDs as variables.
fn body_pieces(e: &Exchange, secrets: &[SecretVar], stores: &[(String, String)]) -> Vec<Piece> {
    let mut vars: Vec<String> = Vec::new();
    if e.raw {
        let text = e
            .request
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| e.request.to_string());
        if text.contains(OPEN) {
            return vec![Piece::Text(text)];
        }
        let mut marked = text;
        for (id, var) in stores {
            if marked.contains(id.as_str()) {
                marked = marked.replace(id.as_str(), &marker(vars.len()));
                vars.push(var.clone());
            }
        }
        return split_marked(&marked, &vars);
    }
    let plain = serde_json::to_string(&e.request).unwrap_or_default();
    if plain.contains(OPEN) {
        return vec![Piece::Text(plain)];
    }
    fn mark(
        value: &Value,
        key: Option<&str>,
        secrets: &[SecretVar],
        stores: &[(String, String)],
        vars: &mut Vec<String>,
    ) -> Value {
        match value {
            Value::String(s) => {
                let var = if s.starts_with(SECRET_TOKEN) {
                    let base = secret_base(key);
                    secrets
                        .iter()
                        .find(|v| v.token == *s && v.base == base)
                        .map(|v| v.var.clone())
                } else {
                    stores
                        .iter()
                        .find(|(id, _)| id == s)
                        .map(|(_, v)| v.clone())
                };
                match var {
                    Some(var) => {
                        vars.push(var);
                        Value::String(marker(vars.len() - 1))
                    }
                    None => value.clone(),
                }
            }
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| mark(v, key, secrets, stores, vars))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), mark(v, Some(k), secrets, stores, vars)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let marked = mark(&e.request, None, secrets, stores, &mut vars);
    split_marked(&serde_json::to_string(&marked).unwrap_or_default(), &vars)
}

/// A shell word for the pieces: text quoted, variables as `"$VAR"`.
fn sh_pieces(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => sh_quote(t),
            Piece::Var(v) => format!("\"${v}\""),
        })
        .collect()
}

/// Quotes text for sh: `'…'` with `'` written as `'\''`; bash's `$'…'` when the text holds
/// control characters (so each command stays on one line).
pub fn sh_quote(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return format!("'{}'", text.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Text as one shell word: as it is when it holds only safe characters, quoted otherwise.
pub fn sh_word(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        text.to_string()
    } else {
        sh_quote(text)
    }
}

fn render(history: &History, endpoint: &str, region: &str, tool: Tool) -> Vec<String> {
    let spec = Spec::kms();
    let history = super::redact_history(history);
    let items = plan(&history);
    let secrets = secret_vars(&items);
    let stores = store_vars(&items);
    let mut lines = Vec::new();
    if !secrets.is_empty() {
        lines.push("# set these first (ckscheck never prints secrets):".to_string());
        for v in &secrets {
            lines.push(format!("#   {}: {}", v.var, v.about));
        }
    }
    let rule_breaking = items.iter().any(|i| {
        matches!(i, Item::Command { head, .. } if !head.raw
            && head.expect.as_ref().is_some_and(|x| x.error.is_some()))
    });
    if tool == Tool::Cli && rule_breaking {
        lines.push(
            "# the AWS CLI checks some limits itself; set parameter_validation = false in the \
             profile, or use the curl lines"
                .to_string(),
        );
    }
    let url = sh_word(endpoint);
    let region_word = sh_word(region);
    let scope = format!("aws:amz:{region}:{}", spec.service.signing_name);
    let scope = if scope
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ":-_.".contains(c))
    {
        format!("\"{scope}\"")
    } else {
        sh_quote(&scope)
    };
    for item in &items {
        let (head, last, concurrent) = match item {
            Item::Comment(c) => {
                lines.push(c.clone());
                continue;
            }
            Item::Command {
                head,
                last,
                concurrent,
            } => (*head, *last, *concurrent),
        };
        if concurrent {
            lines.push("# (sent at the same time as the request above)".to_string());
        }
        let capture = if head.operation == "CreateCustomKeyStore" {
            last.body()
                .get("CustomKeyStoreId")
                .and_then(Value::as_str)
                .filter(|_| last.status() == Some(200))
                .and_then(|id| stores.iter().find(|(known, _)| known == id))
                .map(|(_, var)| var.clone())
        } else {
            None
        };
        let data = sh_pieces(&body_pieces(head, &secrets, &stores));
        let line = match tool {
            Tool::Cli if head.raw => {
                let what = match &head.wire {
                    Some(w) => format!("headers no SDK sends ({})", w.describe()),
                    None if spec.operation(&head.operation).is_none() => {
                        "an operation KMS does not have".to_string()
                    }
                    None => "a body no SDK sends".to_string(),
                };
                lines.push(format!(
                    "# step {}: {} with {what}: see the curl lines",
                    head.step + 1,
                    head.operation
                ));
                continue;
            }
            Tool::Cli => {
                let mut cmd = format!(
                    "aws kms {} --endpoint-url {url} --region {region_word} --cli-input-json {data}",
                    cli_name(&head.operation)
                );
                if spec.paginators.contains_key(&head.operation) {
                    cmd.push_str(" --no-paginate");
                }
                match &capture {
                    Some(var) => {
                        format!("{var}=$({cmd} --query CustomKeyStoreId --output text)")
                    }
                    None => cmd,
                }
            }
            Tool::Curl => {
                // Exactly the headers the history says were sent: a protocol case's own
                // Content-Type, and no X-Amz-Target at all when none was sent.
                let wire = head.wire.clone().unwrap_or_default();
                let target = if wire.no_target {
                    String::new()
                } else {
                    let t = format!(
                        "X-Amz-Target: {}.{}",
                        spec.service.target_prefix, head.operation
                    );
                    format!(" -H {}", sh_quote(&t))
                };
                let content_type = sh_quote(&format!(
                    "Content-Type: {}",
                    wire.content_type
                        .as_deref()
                        .unwrap_or(&spec.service.content_type)
                ));
                let cmd = format!(
                    "curl -sS {url} --aws-sigv4 {scope} \
                     --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" \
                     ${{AWS_SESSION_TOKEN:+-H \"X-Amz-Security-Token: $AWS_SESSION_TOKEN\"}} \
                     -H {content_type}{target} --data-binary {data}"
                );
                match &capture {
                    Some(var) => format!("{var}=$({cmd} | jq -r .CustomKeyStoreId)"),
                    None => cmd,
                }
            }
        };
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample;
    use serde_json::json;
    use std::process::Command;

    fn has_shell(name: &str) -> bool {
        Command::new(name)
            .arg("-c")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs the lines in bash with `aws`, `curl` and `jq` replaced by functions that print
    /// their arguments (one per line, calls separated by `---`) and answer with a new store
    /// ID; returns each call's arguments.
    fn run_in_bash(lines: &[String], env: &[(&str, &str)]) -> Vec<Vec<String>> {
        let script = format!(
            "set -eu\n\
             AWS_ACCESS_KEY_ID=AKIDEXAMPLE; AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n\
             show() {{ printf '%s\\n' \"$@\" >&2; printf -- '---\\n' >&2; }}\n\
             aws() {{ show \"$@\"; echo cks-replayed; }}\n\
             curl() {{ show \"$@\"; echo '{{\"CustomKeyStoreId\":\"cks-replayed\"}}'; }}\n\
             jq() {{ cat >/dev/null; echo cks-replayed; }}\n\
             {}\n",
            lines.join("\n")
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .envs(env.iter().copied())
            .env_remove("AWS_SESSION_TOKEN")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr)
            .unwrap()
            .split("---\n")
            .filter(|c| !c.trim().is_empty())
            .map(|c| c.lines().map(str::to_string).collect())
            .collect()
    }

    fn arg_after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let i = args.iter().position(|a| a == flag).expect(flag);
        &args[i + 1]
    }

    #[test]
    fn cli_names_are_kebab_case() {
        assert_eq!(cli_name("CreateCustomKeyStore"), "create-custom-key-store");
        assert_eq!(
            cli_name("DescribeCustomKeyStores"),
            "describe-custom-key-stores"
        );
        assert_eq!(cli_name("CreateKey"), "create-key");
        assert_eq!(cli_name("GetHSMConfig"), "get-hsm-config");
    }

    #[test]
    fn cli_lines_have_the_documented_shape_and_collapse_retries_polls_and_pages() {
        let lines = aws_cli_commands(&sample::history(), "http://localhost:4566", "us-east-1");
        let text = lines.join("\n");
        let create: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("aws kms create-custom-key-store "))
            .collect();
        assert_eq!(create.len(), 1, "the throttled retry is skipped:\n{text}");
        assert!(
            create[0].starts_with(
                "STORE_1=$(aws kms create-custom-key-store --endpoint-url http://localhost:4566 \
                 --region us-east-1 --cli-input-json '{"
            ),
            "{}",
            create[0]
        );
        assert!(create[0].contains(r#""CustomKeyStoreName":"ckscheck-r1-o'\''brien""#));
        assert!(create[0].contains(r#""KeyStorePassword":"'"$KEY_STORE_PASSWORD"'""#));
        assert!(create[0].ends_with("--query CustomKeyStoreId --output text)"));
        // Later uses of the created ID go through the variable.
        assert!(text.contains(
            r#"aws kms connect-custom-key-store --endpoint-url http://localhost:4566 --region us-east-1 --cli-input-json '{"CustomKeyStoreId":"'"$STORE_1"'"}'"#
        ), "{text}");
        assert!(!text.contains(sample::STORE_ID), "{text}");
        // Settle: the first poll, then a comment; paging: the first page, then a comment.
        let describes = lines
            .iter()
            .filter(|l| l.starts_with("aws kms describe-custom-key-stores"))
            .count();
        assert_eq!(describes, 2, "{text}");
        assert!(text.contains("(2 more poll(s))"), "{text}");
        assert!(
            text.contains("# ... then follow NextMarker: 2 more page(s)"),
            "{text}"
        );
        assert!(!text.contains("m-1"), "{text}");
        assert!(
            lines
                .iter()
                .filter(|l| l.contains("describe-custom-key-stores"))
                .all(|l| l.ends_with("--no-paginate"))
        );
        // The raw body gets only a pointer to curl; the concurrent pair is flagged.
        assert!(
            text.contains("# step 6: DescribeCustomKeyStores with a body no SDK sends"),
            "{text}"
        );
        assert!(!text.contains("{\"Limit\": "), "{text}");
        assert!(
            text.contains(
                "# (sent at the same time as the request above)\naws kms delete-custom-key-store"
            ),
            "{text}"
        );
        // Secrets: variables named and described, tokens gone.
        assert!(
            text.contains(
                "#   KEY_STORE_PASSWORD: the kmsuser password of CloudHSM cluster cluster-1234abcd"
            ),
            "{text}"
        );
        assert!(text.contains("#   WRONG_KEY_STORE_PASSWORD: "), "{text}");
        assert!(!text.contains("[secret"), "{text}");
        assert!(text.contains("parameter_validation = false"), "{text}");
    }

    #[test]
    fn curl_lines_sign_with_env_credentials_only() {
        let lines = curl_commands(&sample::history(), "http://localhost:4566", "eu-west-2");
        let text = lines.join("\n");
        let commands: Vec<_> = lines.iter().filter(|l| !l.starts_with('#')).collect();
        // create, connect, first poll, first page, update, raw, disconnect, delete
        assert_eq!(commands.len(), 8, "{text}");
        for c in &commands {
            assert!(c.contains("curl -sS http://localhost:4566 --aws-sigv4 \"aws:amz:eu-west-2:kms\" --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\""), "{c}");
            assert!(
                c.contains(
                    "-H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService."
                ),
                "{c}"
            );
        }
        assert!(commands[0].starts_with("STORE_1=$(curl "));
        assert!(commands[0].ends_with(" | jq -r .CustomKeyStoreId)"));
        assert!(text.contains(r#"-H 'X-Amz-Target: TrentService.DescribeCustomKeyStores' --data-binary '{"Limit": '"#), "{text}");
        assert!(
            !text.contains("wJalr") && !text.contains("[secret"),
            "{text}"
        );
    }

    /// Catches a reproducer that sends X-Amz-Target although the history says none was sent,
    /// the protocol's Content-Type instead of the recorded one, or an AWS CLI command for an
    /// operation KMS does not have.
    #[test]
    fn protocol_cases_reproduce_the_headers_actually_sent() {
        use crate::history::{Expectation, Outcome, Wire};
        let exchange = |step: u32, op: &str, wire: Option<Wire>| Exchange {
            sequence: 0,
            step,
            attempt: 1,
            operation: op.into(),
            request: json!("{}"),
            raw: true,
            started_ms: 0,
            elapsed_ms: 1,
            outcome: Outcome::Response {
                status: 400,
                request_id: None,
                content_type: None,
                error_type: None,
                body: json!({"__type": "UnknownOperationException"}),
                text: None,
            },
            expect: Some(Expectation {
                error: Some("UnknownOperationException".into()),
                rule: "protocol/x".into(),
                unsettled: false,
            }),
            wire,
        };
        let history = History {
            exchanges: vec![
                exchange(0, "ListCustomKeyStores", None),
                exchange(
                    1,
                    "DescribeCustomKeyStores",
                    Some(Wire {
                        no_target: true,
                        content_type: None,
                    }),
                ),
                exchange(
                    2,
                    "DescribeCustomKeyStores",
                    Some(Wire {
                        no_target: false,
                        content_type: Some("text/plain".into()),
                    }),
                ),
            ],
        };
        let curl: Vec<String> = curl_commands(&history, "http://h", "us-east-1")
            .into_iter()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(curl.len(), 3, "{curl:?}");
        assert!(curl[0].contains("-H 'X-Amz-Target: TrentService.ListCustomKeyStores'"));
        assert!(!curl[1].contains("X-Amz-Target"), "{}", curl[1]);
        assert!(curl[1].contains("-H 'Content-Type: application/x-amz-json-1.1'"));
        assert!(
            curl[2].contains("-H 'Content-Type: text/plain'"),
            "{}",
            curl[2]
        );
        assert!(!curl[2].contains("x-amz-json"), "{}", curl[2]);
        assert!(curl[2].contains("-H 'X-Amz-Target: TrentService.DescribeCustomKeyStores'"));
        let cli = aws_cli_commands(&history, "http://h", "us-east-1").join("\n");
        assert!(!cli.contains("aws kms"), "{cli}");
        assert!(cli.contains("ListCustomKeyStores with an operation KMS does not have"));
        assert!(
            cli.contains("headers no SDK sends (no X-Amz-Target)"),
            "{cli}"
        );
        assert!(cli.contains("(Content-Type text/plain)"), "{cli}");
    }

    #[test]
    fn the_lines_run_in_bash_and_send_the_recorded_bodies() {
        if !has_shell("bash") {
            eprintln!("bash not found; skipped");
            return;
        }
        let env = [
            ("KEY_STORE_PASSWORD", "pw-from-env"),
            ("WRONG_KEY_STORE_PASSWORD", "wrong-from-env"),
        ];
        let history = sample::history();
        let cli = run_in_bash(
            &aws_cli_commands(&history, "http://localhost:4566", "us-east-1"),
            &env,
        );
        assert_eq!(cli.len(), 7);
        assert_eq!(&cli[0][..2], ["kms", "create-custom-key-store"]);
        let create: Value = serde_json::from_str(arg_after(&cli[0], "--cli-input-json")).unwrap();
        assert_eq!(create["CustomKeyStoreName"], sample::NAME);
        assert_eq!(create["KeyStorePassword"], "pw-from-env");
        assert_eq!(
            create["TrustAnchorCertificate"],
            history.exchanges[0].request["TrustAnchorCertificate"]
        );
        let connect: Value = serde_json::from_str(arg_after(&cli[1], "--cli-input-json")).unwrap();
        assert_eq!(connect, json!({"CustomKeyStoreId": "cks-replayed"}));
        let update: Value = serde_json::from_str(arg_after(&cli[4], "--cli-input-json")).unwrap();
        assert_eq!(update["KeyStorePassword"], "wrong-from-env");

        let curl = run_in_bash(
            &curl_commands(&history, "http://localhost:4566", "us-east-1"),
            &env,
        );
        assert_eq!(curl.len(), 8);
        assert_eq!(arg_after(&curl[0], "--user"), "AKIDEXAMPLE:wJalrXUtnFEMI");
        assert!(!curl[0].iter().any(|a| a.contains("X-Amz-Security-Token")));
        assert_eq!(arg_after(&curl[5], "--data-binary"), "{\"Limit\": ");
        let delete: Value = serde_json::from_str(arg_after(&curl[7], "--data-binary")).unwrap();
        assert_eq!(delete, json!({"CustomKeyStoreId": "cks-replayed"}));
    }

    #[test]
    fn quoting_survives_quotes_backslashes_and_control_characters() {
        if !has_shell("bash") {
            eprintln!("bash not found; skipped");
            return;
        }
        for text in [
            "o'brien",
            "a'b''c'",
            "x\\'y\"z $HOME `id`",
            "line1\nline2\t\u{1}'\\",
            "",
        ] {
            let quoted = sh_quote(text);
            assert!(!quoted.contains('\n'), "{quoted}");
            let out = Command::new("bash")
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), text, "{quoted}");
        }
        assert_eq!(sh_quote("o'brien"), r"'o'\''brien'");
        assert_eq!(sh_word("http://h:1/p"), "http://h:1/p");
        assert_eq!(sh_word("a b"), "'a b'");
    }

    #[test]
    fn replay_hints_name_the_seed_check_and_endpoint() {
        assert_eq!(
            replay_hint(42, "pagination", None),
            "ckscheck run --seed 42 --filter pagination"
        );
        assert_eq!(
            replay_hint(
                7,
                "store states",
                Some("https://kms.eu-west-1.amazonaws.com")
            ),
            "ckscheck run --seed 7 --filter 'store states' --endpoint-url https://kms.eu-west-1.amazonaws.com"
        );
        // No check: the whole run (what replays the not-implemented probe).
        assert_eq!(
            replay_hint(42, "", Some("http://h:1")),
            "ckscheck run --seed 42 --endpoint-url http://h:1"
        );
    }

    #[test]
    fn a_clear_secret_in_a_history_is_masked_before_it_is_printed() {
        let mut history = sample::history();
        history.exchanges[0].request["KeyStorePassword"] = json!("leaked-Passw0rd");
        history.exchanges.truncate(1);
        let text = [
            aws_cli_commands(&history, "http://h", "r"),
            curl_commands(&history, "http://h", "r"),
        ]
        .concat()
        .join("\n");
        assert!(!text.contains("leaked-Passw0rd"), "{text}");
        assert!(text.contains("\"$KEY_STORE_PASSWORD\""), "{text}");
    }
}
