//! Goal: README.md's list of supported commands is the command table's, so it cannot
//! drift when commands are added or removed.
//!
//! Method: render the list from `CommandKind` (`tskv::command::list::readme_list`) and
//! compare it with the text between README's `<!-- commands:begin -->` and `<!--
//! commands:end -->` markers. On a difference the test fails and prints the text to
//! paste; `TSKV_README_WRITE=1 cargo test --test readme_commands` writes it in place.

use std::path::Path;

const BEGIN: &str =
    "<!-- commands:begin (generated from the command table by tests/readme_commands.rs) -->\n";
const END: &str = "<!-- commands:end -->";

#[test]
fn readme_lists_exactly_the_commands_of_the_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let start = readme
        .find(BEGIN)
        .unwrap_or_else(|| panic!("README.md lacks the line {BEGIN:?}"))
        + BEGIN.len();
    let end = start
        + readme[start..]
            .find(END)
            .unwrap_or_else(|| panic!("README.md lacks {END:?} after the begin marker"));
    let expected = tskv::command::list::readme_list();
    if readme[start..end] == expected {
        return;
    }
    if std::env::var_os("TSKV_README_WRITE").is_some() {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's command list differs from the command table; paste this between the \
         markers (or run with TSKV_README_WRITE=1):\n\n{expected}"
    );
}
