//! "Did you mean": the closest known name to a misspelt key or variable.

use super::ConfigError;

/// Similarity (1 - edit distance / length, with transpositions) from which a known name
/// counts as the one meant; one edit always does, so short names (`ap`) find theirs. Edit
/// distance rather than Jaro-Winkler: names here share long prefixes (`SSOT_`), which
/// Jaro-Winkler rewards whatever follows.
const CLOSE_ENOUGH: f64 = 0.7;

/// The known name closest to `name`, if any is close enough to be what was meant.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    known
        .into_iter()
        .map(|candidate| {
            let candidate_lower = candidate.to_ascii_lowercase();
            let distance = strsim::damerau_levenshtein(&name, &candidate_lower);
            let longest = name
                .chars()
                .count()
                .max(candidate_lower.chars().count())
                .max(1);
            let similarity = 1.0 - distance as f64 / longest as f64;
            (distance, similarity, candidate)
        })
        .filter(|(distance, similarity, _)| *distance == 1 || *similarity >= CLOSE_ENOUGH)
        .min_by_key(|(distance, _, _)| *distance)
        .map(|(_, _, candidate)| candidate)
}

/// The error for an unknown `what` (`key`, `table`, `variable`) named `key`: a suggestion
/// when one is close, else the list of known names.
pub fn unknown(key: &str, what: &str, known: &[&str]) -> ConfigError {
    let last = key.rsplit('.').next().unwrap_or(key);
    let reason = match did_you_mean(last, known.iter().copied()) {
        Some(meant) => format!("unknown {what}; did you mean `{meant}`?"),
        None => format!("unknown {what}; expected one of: {}", known.join(", ")),
    };
    ConfigError::new(key, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name_only_when_close() {
        let known = [
            "SSOT_SERVICE_KEY",
            "SSOT_JWT_SECRET",
            "SSOT_ALLOWED_ORIGINS",
        ];
        assert_eq!(
            did_you_mean("SSOT_SERVICE_KYE", known),
            Some("SSOT_SERVICE_KEY")
        );
        assert_eq!(
            did_you_mean("SSOT_JWT_SECRETS", known),
            Some("SSOT_JWT_SECRET")
        );
        assert_eq!(did_you_mean("SSOT_ZZZ_QQQ_XXX_WWW", known), None);
        assert_eq!(
            unknown(
                "redis.comand-timeout-ms",
                "key",
                &["command-timeout-ms", "app"]
            )
            .reason,
            "unknown key; did you mean `command-timeout-ms`?"
        );
        assert_eq!(
            unknown("qqq", "table", &["redis", "gateway"]).reason,
            "unknown table; expected one of: redis, gateway"
        );
    }
}
