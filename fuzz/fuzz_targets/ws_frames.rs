//! WebSocket frames as they arrive, in reads cut anywhere: actix's codec decodes them and the
//! session's `Fragments` puts messages sent in pieces back together within the size bound.
#![no_main]

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{Codec, Frame, Item, Message};
use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use hubbub::chat::fragments::{Fragments, Refused};
use libfuzzer_sys::fuzz_target;

/// Small, so that pieces adding up past the bound are easy to reach.
const LIMIT: usize = 256;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Whatever bytes a client sends.
    Raw { bytes: Vec<u8>, cuts: Vec<u8> },
    /// Well-formed frames, as a browser encodes them.
    Frames {
        sent: Vec<(Kind, Vec<u8>)>,
        cuts: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Text,
    Binary,
    FirstText,
    FirstBinary,
    Continue,
    Last,
    Ping,
}

fn message(kind: Kind, payload: &[u8]) -> Message {
    let piece = Bytes::copy_from_slice(payload);
    match kind {
        Kind::Text => Message::Text(String::from_utf8_lossy(payload).into_owned().into()),
        Kind::Binary => Message::Binary(piece),
        Kind::FirstText => Message::Continuation(Item::FirstText(piece)),
        Kind::FirstBinary => Message::Continuation(Item::FirstBinary(piece)),
        Kind::Continue => Message::Continuation(Item::Continue(piece)),
        Kind::Last => Message::Continuation(Item::Last(piece)),
        // A control frame's payload is at most 125 bytes.
        Kind::Ping => Message::Ping(piece.slice(..piece.len().min(125))),
    }
}

/// Decodes `bytes` as the server does, delivered in reads of the lengths `cuts` gives.
fn decode(bytes: &[u8], cuts: &[u8]) -> (Vec<Frame>, bool) {
    let mut codec = Codec::new().max_size(LIMIT);
    let (mut frames, mut buffer, mut rest) = (Vec::new(), BytesMut::new(), bytes);
    let mut cuts = cuts
        .iter()
        .map(|&cut| usize::from(cut) + 1)
        .chain(std::iter::repeat(64));
    while !rest.is_empty() {
        let (read, later) = rest.split_at(cuts.next().unwrap_or(64).min(rest.len()));
        buffer.extend_from_slice(read);
        rest = later;
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

/// The bytes a piece of a message carries.
fn piece(item: &Item) -> &Bytes {
    match item {
        Item::FirstText(bytes)
        | Item::FirstBinary(bytes)
        | Item::Continue(bytes)
        | Item::Last(bytes) => bytes,
    }
}

/// A copy of a piece: actix's `Item` is not `Clone`.
fn copy(item: &Item) -> Item {
    match item {
        Item::FirstText(piece) => Item::FirstText(piece.clone()),
        Item::FirstBinary(piece) => Item::FirstBinary(piece.clone()),
        Item::Continue(piece) => Item::Continue(piece.clone()),
        Item::Last(piece) => Item::Last(piece.clone()),
    }
}

/// Feeds every continuation to `Fragments` as the session does, checking each answer against
/// what the client sent of the message under way.
fn assemble(frames: &[Frame]) {
    let mut fragments = Fragments::default();
    let mut sent: Option<Vec<u8>> = None;
    for frame in frames {
        let Frame::Continuation(item) = frame else {
            continue;
        };
        match item {
            Item::FirstText(piece) => sent = Some(piece.to_vec()),
            Item::FirstBinary(_) => sent = None,
            Item::Continue(piece) | Item::Last(piece) => {
                if let Some(sent) = sent.as_mut() {
                    sent.extend_from_slice(piece);
                }
            }
        }
        let last = matches!(item, Item::Last(_));
        let answer = fragments.push(copy(item), LIMIT);
        let so_far = sent.as_deref().unwrap_or_default();
        match &answer {
            Ok(Some(text)) => assert!(last && text.as_bytes() == so_far),
            Ok(None) => assert!(so_far.len() <= LIMIT && (!last || sent.is_none())),
            Err(Refused::Binary) => assert!(matches!(item, Item::FirstBinary(_))),
            Err(Refused::TooBig) => assert!(so_far.len() > LIMIT),
            Err(Refused::NotUtf8) => assert!(last && std::str::from_utf8(so_far).is_err()),
        }
        if !matches!(answer, Ok(None)) {
            sent = None;
        }
    }
}

fuzz_target!(|input: Input| match input {
    Input::Raw { bytes, cuts } => assemble(&decode(&bytes, &cuts).0),
    Input::Frames { sent, cuts } => {
        let mut client = Codec::new().client_mode();
        let mut wire = BytesMut::new();
        // actix's encoder refuses pieces out of order (a continuation before its start), as a
        // browser never sends them: those are dropped here, and `Raw` sends them anyway.
        let sent: Vec<(Kind, Vec<u8>)> = sent
            .into_iter()
            .filter(|(kind, payload)| client.encode(message(*kind, payload), &mut wire).is_ok())
            .collect();
        let (frames, failed) = decode(&wire, &cuts);
        // However the bytes are cut into reads, the frames come out as they went in, up to one
        // that breaks a rule of RFC 6455 or the size bound.
        for (frame, (kind, payload)) in frames.iter().zip(&sent) {
            let payload = match message(*kind, payload) {
                Message::Text(text) => text.into_bytes(),
                Message::Binary(bytes) | Message::Ping(bytes) => bytes,
                Message::Continuation(item) => piece(&item).clone(),
                other => unreachable!("never sent: {other:?}"),
            };
            let decoded = match frame {
                Frame::Text(bytes) | Frame::Binary(bytes) | Frame::Ping(bytes) => bytes,
                Frame::Continuation(item) => piece(item),
                other => panic!("{kind:?} came out as {other:?}"),
            };
            assert_eq!(decoded, &payload, "{kind:?}");
        }
        if !failed {
            assert_eq!(frames.len(), sent.len());
        }
        assemble(&frames);
    }
});
