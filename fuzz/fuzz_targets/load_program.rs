//! The compiled-set loader: arbitrary bytes are refused with an error, never a panic, and a set
//! that loads can be disassembled and evaluated without panicking.
//!
//! A file's SHA-256 would stop almost every mutation at the checksum, so by default the harness
//! treats the input as the payload and writes a correct header around it; that sends the
//! mutations into the decoder and the validator, where crafted indexes and patterns live. An
//! input starting with the magic bytes is loaded as it is, to fuzz the header checks too.
#![no_main]

use claimgate::payload::Scratch;
use claimgate::program::{MAGIC, Program, frame};
use claimgate::vm::Options;
use libfuzzer_sys::fuzz_target;

const CLAIMS: [&str; 3] = [
    r#"{"iss":"https://gitlab.example.com","aud":"strongbox","sub":"a","ref":"main","iat":1,"exp":4000000000}"#,
    r#"{"iss":"https://token.actions.githubusercontent.com","aud":["a","b"],"repository":"o/r","exp":4000000000}"#,
    r#"{"iss":"x","a":{"b":[1,"2",null,true]},"exp":4000000000}"#,
];

fuzz_target!(|data: &[u8]| {
    let bytes = if data.starts_with(&MAGIC) { data.to_vec() } else { frame(data) };
    let Ok(program) = Program::from_bytes(&bytes) else { return };
    let _ = program.disassemble();
    // A step budget keeps a crafted program's work bounded; no panic is the property here.
    let options = Options::default().explain(true).max_steps(10_000);
    let mut scratch = Scratch::default();
    for claims in CLAIMS {
        let roles = program.roles.iter().map(|r| Some(program.string(r.name)));
        for role in roles.chain([None]) {
            let _ = program.evaluate(claims.as_bytes(), role, 1_000, &options, &mut scratch);
        }
    }
    // Whatever loads encodes back to something that loads again.
    let again = Program::from_bytes(&program.to_bytes()).expect("a loaded program reloads");
    assert_eq!(again.disassemble(), program.disassemble());
});
