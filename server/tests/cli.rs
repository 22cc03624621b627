//! The `vigil` binary's command-line contract: help, one-line errors, exit code 2.

use std::process::Command;

fn vigil(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil")).args(args).output().expect("run vigil");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_lists_every_flag_and_exits_0() {
    let (code, stdout, _) = vigil(&["--help"]);
    assert_eq!(code, Some(0));
    for flag in ["--config.file", "--storage.tsdb.path", "--web.listen-address", "--log.level"] {
        assert!(stdout.contains(flag), "{flag} missing from help:\n{stdout}");
    }
}

#[test]
fn unknown_flag_is_one_line_and_exit_2() {
    let (code, _, stderr) = vigil(&["--storage.tsdb.pth=/tmp/x"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--storage.tsdb.pth"), "{stderr}");
}

#[test]
fn unreadable_config_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yml");
    let (code, _, stderr) = vigil(&["--config.file", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("missing.yml"), "{stderr}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "scrape_configs:\n  - job_name: a\n    scrape_intervl: 5s\n").unwrap();
    let (code, _, stderr) = vigil(&["--config.file", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("scrape_intervl") && stderr.contains("line 3"), "{stderr}");
}

#[test]
fn check_config_reports_like_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['h:1']\n",
    )
    .unwrap();
    let (code, stdout, _) = vigil(&["check", "config", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("SUCCESS"), "{stdout}");

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "global:\n  scrape_interval: soon\n").unwrap();
    let (code, stdout, _) = vigil(&["check", "config", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAILED") && stdout.contains("soon"), "{stdout}");
}
