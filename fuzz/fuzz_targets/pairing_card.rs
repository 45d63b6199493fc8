//! A pairing card pasted by an operator (`threatlog peer add CARD`, `POST /servers/add`), as
//! the other node printed it or as anyone else made it up: whatever the text, parsing returns
//! a card or an error without panicking, and a card that parses prints (pairing stores the
//! printed form as the statement behind the org key it binds) as a card that parses back to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use threatlog::sync::peer::Card;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(card) = Card::decode(text) {
        assert_eq!(Card::decode(&card.encode()).ok(), Some(card));
    }
});
