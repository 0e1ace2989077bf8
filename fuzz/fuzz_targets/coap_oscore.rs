//! OSCORE (RFC 8613) on arbitrary bytes: the OSCORE option parser (whatever
//! it accepts must re-emit to the same bytes) and request and response
//! verification with a fixed security context (no panic, and a request
//! that verifies is never accepted twice).
#![no_main]

use cssf_coap::oscore::{OscoreOption, Params, SecurityContext, SenderSequence};
use libfuzzer_sys::fuzz_target;

fn context(sender: &[u8], recipient: &[u8]) -> Option<SecurityContext> {
    let p = Params {
        master_secret: &[0x01; 16],
        master_salt: &[],
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    };
    SecurityContext::new(&p, SenderSequence::Volatile).ok()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(opt) = OscoreOption::parse(data) {
        let mut out = vec![0u8; data.len()];
        let n = opt.emit(&mut out).expect("a parsed option re-emits");
        assert_eq!(&out[..n], data);
        assert_eq!(opt.buffer_len(), n);
    }

    let (Some(mut client), Some(mut server)) = (context(&[], &[0x01]), context(&[0x01], &[]))
    else {
        return;
    };
    let mut out = [0u8; 1024];
    let mut msg = data.to_vec();
    if server.unprotect_request(&mut msg, &mut out).is_ok() {
        let mut again = data.to_vec();
        assert!(server.unprotect_request(&mut again, &mut out).is_err());
    }
    let Ok((_, mut binding)) = client.protect_request(&[0x40, 0x01, 0x00, 0x00], &mut out) else {
        return;
    };
    let mut msg = data.to_vec();
    let _ = client.unprotect_response(&mut binding, &mut msg, &mut out);
});
