//! A message a client sends in pieces (continuation frames), put back together within a size bound.

use actix_http::ws::Item;
use bytes::BytesMut;

/// Why a message sent in pieces is refused; each closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its first piece is binary, which the protocol has no use for.
    Binary,
    /// Its pieces add up to more than the bound.
    TooBig,
    /// Its pieces, put together, are not UTF-8 (a piece alone may end inside a character).
    NotUtf8,
}

/// The pieces received so far of the message under way, if one is.
#[derive(Debug, Default)]
pub struct Fragments {
    received: Option<BytesMut>,
}

impl Fragments {
    /// Takes the next piece: the whole text once its last piece arrives, `None` before then. A
    /// message's pieces together hold at most `limit` bytes.
    pub fn push(&mut self, item: Item, limit: usize) -> Result<Option<String>, Refused> {
        let (piece, last) = match item {
            Item::FirstText(piece) => {
                self.received = Some(BytesMut::new());
                (piece, false)
            }
            Item::FirstBinary(_) => {
                self.received = None;
                return Err(Refused::Binary);
            }
            Item::Continue(piece) => (piece, false),
            Item::Last(piece) => (piece, true),
        };
        // actix's codec refuses a continuation without a start; one that slips past is ignored.
        let Some(received) = self.received.as_mut() else {
            return Ok(None);
        };
        if received.len() + piece.len() > limit {
            self.received = None;
            return Err(Refused::TooBig);
        }
        received.extend_from_slice(&piece);
        if !last {
            return Ok(None);
        }
        let whole = self.received.take().unwrap_or_default();
        String::from_utf8(whole.into())
            .map(Some)
            .map_err(|_| Refused::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn piece(text: &[u8]) -> Bytes {
        Bytes::copy_from_slice(text)
    }

    #[test]
    fn pieces_make_one_message_at_the_last() {
        let mut fragments = Fragments::default();
        assert_eq!(
            fragments.push(Item::FirstText(piece(b"{\"ty")), 64),
            Ok(None)
        );
        assert_eq!(
            fragments.push(Item::Continue(piece(b"pe\":")), 64),
            Ok(None)
        );
        let whole = fragments.push(Item::Last(piece(b"\"typing\"}")), 64);
        assert_eq!(whole, Ok(Some("{\"type\":\"typing\"}".to_owned())));
        // The next message starts afresh.
        assert_eq!(fragments.push(Item::Last(piece(b"stray")), 64), Ok(None));
    }

    #[test]
    fn a_character_split_between_pieces_is_whole_again() {
        let mut fragments = Fragments::default();
        let heart = "♥".as_bytes();
        assert_eq!(
            fragments.push(Item::FirstText(piece(&heart[..1])), 8),
            Ok(None)
        );
        let whole = fragments.push(Item::Last(piece(&heart[1..])), 8);
        assert_eq!(whole, Ok(Some("♥".to_owned())));
    }

    #[test]
    fn the_bound_counts_every_piece_and_exactly_the_limit_passes() {
        let mut fragments = Fragments::default();
        assert_eq!(fragments.push(Item::FirstText(piece(b"1234")), 8), Ok(None));
        let whole = fragments.push(Item::Last(piece(b"5678")), 8);
        assert_eq!(whole, Ok(Some("12345678".to_owned())));
        assert_eq!(fragments.push(Item::FirstText(piece(b"1234")), 8), Ok(None));
        assert_eq!(
            fragments.push(Item::Continue(piece(b"56789")), 8),
            Err(Refused::TooBig)
        );
    }

    #[test]
    fn binary_and_broken_text_are_refused() {
        let mut fragments = Fragments::default();
        assert_eq!(
            fragments.push(Item::FirstBinary(piece(b"\x00")), 8),
            Err(Refused::Binary)
        );
        assert_eq!(
            fragments.push(Item::FirstText(piece(b"\xe2\x99")), 8),
            Ok(None)
        );
        assert_eq!(
            fragments.push(Item::Last(piece(b"!")), 8),
            Err(Refused::NotUtf8)
        );
    }
}
