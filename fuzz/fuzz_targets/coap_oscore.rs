//! OSCORE (RFC 8613) on arbitrary bytes: the OSCORE option parser (whatever
//! it accepts must re-emit to the same bytes), request and response
//! verification with a fixed security context (no panic, and a request
//! that verifies is never accepted twice), and a protected request built
//! from the input then changed on the path as the input says (outer
//! options added, a byte flipped): whatever verifies is taken once, and
//! its options are exactly the ones the client protected plus Class U
//! outer ones, so nothing an on-path attacker adds reaches the verified
//! request unprotected.
#![no_main]

use cssf_coap::oscore::{OscoreOption, Params, SecurityContext, SenderSequence};
use cssf_coap::{Code, Message, MessageBuilder, MessageType, OptionNumber};
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

/// Options an on-path party may add outside the protection (Class U):
/// the verified request may carry these beyond what was protected.
fn class_u(n: u16) -> bool {
    matches!(n, 3 | 7 | 35 | 39 | 16)
}

fn options(m: &Message<'_>) -> Vec<(u16, Vec<u8>)> {
    m.options()
        .map(|o| (o.number.0, o.value.to_vec()))
        .collect()
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

    // A real protected request, then the path's changes.
    let (Some(mut client), Some(mut server)) = (context(&[], &[0x01]), context(&[0x01], &[]))
    else {
        return;
    };
    let (head, rest) = data.split_at(data.len().min(8));
    let mut plain_b = MessageBuilder::<8>::new(MessageType::Con, Code::POST, 7);
    let path = String::from_utf8_lossy(head).replace('/', "_");
    let _ = plain_b.token(&[1, 2]);
    if !path.is_empty() {
        let _ = plain_b.uri_path(&path);
    }
    let _ = plain_b.add_uint(OptionNumber::CONTENT_FORMAT, 0);
    let _ = plain_b.payload(rest.get(..rest.len().min(16)).unwrap_or(&[]));
    let mut plain = [0u8; 256];
    let Ok(pn) = plain_b.emit(&mut plain) else {
        return;
    };
    let mut wire = [0u8; 512];
    let Ok((wn, _)) = client.protect_request(&plain[..pn], &mut wire) else {
        return;
    };
    let Ok(protected) = Message::parse(&wire[..wn]) else {
        return;
    };
    let Ok(mut changed) = MessageBuilder::<16>::from_message(&protected) else {
        return;
    };
    // The rest of the input: (option number, value length, value) triples
    // added outside, then one byte position to flip.
    let mut ops = rest.get(16.min(rest.len())..).unwrap_or(&[]);
    let mut flip = None;
    while let [n, len, tail @ ..] = ops {
        if *n == 0xff {
            flip = Some(usize::from(*len));
            break;
        }
        let len = usize::from(*len % 8).min(tail.len());
        let _ = changed.add_option(OptionNumber(u16::from(*n)), &tail[..len]);
        ops = &tail[len..];
    }
    let mut sent = [0u8; 640];
    let Ok(sn) = changed.emit(&mut sent) else {
        return;
    };
    if let Some(i) = flip {
        if let Some(b) = sent.get_mut(i % sn.max(1)) {
            *b ^= 1;
        }
    }
    let mut m1 = sent[..sn].to_vec();
    let mut inner = [0u8; 640];
    if let Ok((n, _)) = server.unprotect_request(&mut m1, &mut inner) {
        let got = Message::parse(&inner[..n]).expect("a verified request parses");
        let want = Message::parse(&plain[..pn]).expect("the plain request parses");
        assert_eq!(got.code(), want.code());
        assert_eq!(got.payload(), want.payload());
        let extra: Vec<_> = options(&got)
            .into_iter()
            .filter(|o| !options(&want).contains(o))
            .collect();
        assert!(
            extra.iter().all(|(n, _)| class_u(*n)),
            "an unprotected option reached the verified request: {extra:?}"
        );
        for o in options(&want) {
            assert!(
                options(&got).contains(&o),
                "a protected option was lost: {o:?}"
            );
        }
        let mut m2 = sent[..sn].to_vec();
        assert!(server.unprotect_request(&mut m2, &mut inner).is_err());
    }
});
