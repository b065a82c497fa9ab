//! Statement and manifest files: parsing and their consistency checks.
#![no_main]
use fold_ml::job::manifest::Manifest;
use fold_ml::statement::Statement;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = serde_json::from_slice::<Statement>(data) {
        if s.check().is_ok() {
            let _ = (s.z0(0), s.zn(s.segments.len() - 1));
        }
    }
    if let Ok(m) = serde_json::from_slice::<Manifest>(data) {
        let _ = m.check();
        let _ = m.job.difference(&m.job);
    }
});
