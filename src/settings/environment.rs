//! The `IMGWORKER_*` environment as a settings layer.
//!
//! Each setting has the variable `IMGWORKER_` + its key in upper case, the
//! limits included (`IMGWORKER_MAX_OPS` sets `limits.max_ops`). Values are
//! kept as text (the settings' types parse them), so `IMGWORKER_JOBS_QUEUE=007`
//! stays a name; lists are comma-separated (`IMGWORKER_ALLOW_PREFIXES=a/,b/`);
//! an empty variable counts as unset; and `IMGWORKER_REQUIRE_TLS` is false
//! only for `0`, `false`, `no`, `off`, `n` or `f`, like a command-line switch.
//! Other `IMGWORKER_*` variables (`IMGWORKER_LOG`, `IMGWORKER_CONFIG`, ...)
//! are not settings and are left alone.

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};

/// Prefix of every settings variable.
pub(crate) const PREFIX: &str = "IMGWORKER_";

/// How a variable's text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text, parsed by the setting's type.
    Text,
    /// A comma-separated list.
    List,
    /// A switch: anything but a falsey word is true.
    Switch,
}

/// Every setting read from the environment: its key path in the settings
/// (`limits.` for the limits) and how its text is read.
const KEYS: &[(&str, Kind)] = &[
    ("storage", Kind::Text),
    ("backend", Kind::Text),
    ("gpu_memory_mib", Kind::Text),
    ("allow_prefixes", Kind::List),
    ("watermark_prefixes", Kind::List),
    ("account_roots", Kind::List),
    ("export_prefix", Kind::Text),
    ("encryption_keys", Kind::Text),
    ("require_tls", Kind::Switch),
    ("limits.max_source_bytes", Kind::Text),
    ("limits.max_source_pixels", Kind::Text),
    ("limits.max_output_pixels", Kind::Text),
    ("limits.max_ops", Kind::Text),
    ("limits.max_outputs", Kind::Text),
    ("limits.deadline_secs", Kind::Text),
    ("limits.max_export_objects", Kind::Text),
    ("limits.max_export_bytes", Kind::Text),
    ("amqp_url", Kind::List),
    ("amqp_ca_file", Kind::Text),
    ("amqp_cert_file", Kind::Text),
    ("amqp_key_file", Kind::Text),
    ("signing_keys", Kind::Text),
    ("c2pa_cert_file", Kind::Text),
    ("c2pa_key_file", Kind::Text),
    ("c2pa_key", Kind::Text),
    ("jobs_queue", Kind::Text),
    ("dead_letter_exchange", Kind::Text),
    ("dead_queue", Kind::Text),
    ("results_exchange", Kind::Text),
    ("audit_exchange", Kind::Text),
    ("audit_queue", Kind::Text),
    ("retry_queue", Kind::Text),
    ("delivery_limit", Kind::Text),
    ("concurrency", Kind::Text),
    ("grace_secs", Kind::Text),
    ("http_addr", Kind::Text),
    ("retry_backoff_ms", Kind::Text),
];

/// The words that turn a switch off (clap's, for `--require-tls`'s variable).
const FALSEY: &[&str] = &["0", "false", "no", "off", "n", "f"];

/// The variable that sets a key path: `IMGWORKER_` and the last segment in
/// upper case.
pub(crate) fn variable_for(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    format!("{PREFIX}{}", last.to_ascii_uppercase())
}

/// Every settings variable's name.
pub fn variables() -> impl Iterator<Item = String> {
    KEYS.iter().map(|(path, _)| variable_for(path))
}

/// A snapshot of environment variables, read as settings.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    /// This process's environment (variables that are not UTF-8 are skipped).
    pub(crate) fn from_process() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Given variables (tests, or an environment read elsewhere).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The settings these variables set, nested by key path.
    fn dict(&self) -> Dict {
        let mut top = Dict::new();
        let mut limits = Dict::new();
        for (name, text) in &self.vars {
            if text.trim().is_empty() {
                continue;
            }
            let Some(&(path, kind)) = KEYS.iter().find(|(path, _)| variable_for(path) == *name)
            else {
                continue;
            };
            let value = match kind {
                Kind::Text => Value::from(text.clone()),
                Kind::List => Value::from(
                    text.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::from(s.to_string()))
                        .collect::<Vec<_>>(),
                ),
                Kind::Switch => {
                    Value::from(!FALSEY.iter().any(|f| f.eq_ignore_ascii_case(text.trim())))
                }
            };
            match path.strip_prefix("limits.") {
                Some(limit) => limits.insert(limit.to_string(), value),
                None => top.insert(path.to_string(), value),
            };
        }
        if !limits.is_empty() {
            top.insert("limits".into(), Value::from(limits));
        }
        top
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("the environment").interpolater(|_: &Profile, path: &[&str]| {
            variable_for(path.last().copied().unwrap_or_default())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        Ok(Profile::Default.collect(self.dict()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_empty_or_foreign_variables_are_ignored() {
        let env = Environment::from_vars([
            ("IMGWORKER_ALLOW_PREFIXES", "users/, teams/,,"),
            ("IMGWORKER_STORAGE", ""),
            ("IMGWORKER_LOG", "debug"),
            ("IMGWORKER_MAX_OPS", "7"),
            ("IMGWORKER_JOBS_QUEUE", "007"),
            ("IMGWORKER_REQUIRE_TLS", "yes"),
        ]);
        let d = env.dict();
        let prefixes: Vec<String> = d["allow_prefixes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(prefixes, ["users/", "teams/"]);
        assert!(!d.contains_key("storage"), "an empty variable is unset");
        assert!(!d.contains_key("log"), "IMGWORKER_LOG is not a setting");
        assert_eq!(
            d["limits"].as_dict().unwrap()["max_ops"].as_str(),
            Some("7")
        );
        assert_eq!(d["jobs_queue"].as_str(), Some("007"), "kept as text");
        assert_eq!(d["require_tls"].to_bool(), Some(true));
    }

    #[test]
    fn a_switch_is_off_only_for_falsey_words() {
        for (text, on) in [("1", true), ("true", true), ("0", false), ("OFF", false)] {
            let d = Environment::from_vars([("IMGWORKER_REQUIRE_TLS", text)]).dict();
            assert_eq!(d["require_tls"].to_bool(), Some(on), "{text}");
        }
    }
}
