//! The list of supported commands that README.md shows, rendered from the command table
//! so it cannot drift: `tests/readme_commands.rs` fails, printing the text to paste, when
//! README's list differs from [`readme_list`].

use super::CommandKind;

/// Redis's documentation groups, in the order README lists them.
const GROUPS: [(&str, &str); 6] = [
    ("connection", "Connection"),
    ("generic", "Keys"),
    ("string", "Strings and counters"),
    ("transactions", "Transactions"),
    ("server", "Server"),
    ("timeseries", "Time series (RedisTimeSeries)"),
];

/// README's list of commands: one line per group, the names in upper case and in
/// alphabetical order.
pub fn readme_list() -> String {
    let mut out = String::new();
    for (group, title) in GROUPS {
        let mut names: Vec<String> = CommandKind::ALL
            .iter()
            .filter(|kind| kind.group() == group)
            .map(|kind| kind.name().to_ascii_uppercase())
            .collect();
        names.sort();
        let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
        out.push_str(&format!("- **{title}:** {}\n", quoted.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_a_listed_group() {
        for kind in CommandKind::ALL {
            assert!(
                GROUPS.iter().any(|(group, _)| *group == kind.group()),
                "{kind:?}"
            );
        }
        let list = readme_list();
        assert!(list.contains("`GET`") && list.contains("`TS.MRANGE`"));
    }
}
