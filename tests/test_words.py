"""Word units and sub-word → word grouping on the real WordPiece and byte-level BPE tokenizers."""

from __future__ import annotations

import pytest

from explainlm.models.words import assign_tokens_to_words, split_words


def words(text: str) -> list[str]:
    return [text[s:e] for s, e in split_words(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("it 's a charming journey .", ["it", "'s", "a", "charming", "journey", "."]),
        ("wonderful, touching and funny.", ["wonderful", ",", "touching", "and", "funny", "."]),
        ("(great) film!!", ["(", "great", ")", "film", "!!"]),
        ("don't e-mail me", ["don't", "e-mail", "me"]),
        ("ca n't", ["ca", "n't"]),
        ("  spaced   out  ", ["spaced", "out"]),
        ("...", ["..."]),
        ("naïve café", ["naïve", "café"]),
    ],
)
def test_split_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_assign_skips_leading_space_and_flags_outside_tokens() -> None:
    text = "Hello world"
    spans = split_words(text)
    # byte-level BPE style: " world" carries its leading space; None = special token
    assert assign_tokens_to_words(text, [None, (0, 5), (5, 11), None], spans) == [-1, 0, 1, -1]


def test_wordpiece_multi_piece_words(tiny_bert) -> None:
    text = "Unbelievably antidisestablishmentarianism rocks"
    enc = tiny_bert.encode([text])[0]
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert enc.special[0] and enc.special[-1] and not any(enc.special[1:-1])
    assert enc.words == ["Unbelievably", "antidisestablishmentarianism", "rocks"]
    pieces = {}
    for tok, wid in zip(enc.tokens, enc.word_ids, strict=True):
        pieces.setdefault(wid, []).append(tok)
    assert len(pieces[1]) > 2  # the long word is split into several WordPiece tokens
    # every piece of a word maps back to characters of that word
    for i, wid in enumerate(enc.word_ids):
        if wid >= 0:
            s, e = enc.offsets[i]
            ws, we = enc.word_spans[wid]
            assert ws <= s and e <= we


def test_bpe_multi_piece_words_and_template(tiny_llama) -> None:
    template = "Review: {text}\nSentiment:"
    text = "An unbelievably overwrought melodrama, honestly."
    enc = tiny_llama.encode([text], template=template)[0]
    assert enc.sequence == template.replace("{text}", text)
    assert enc.words == ["An", "unbelievably", "overwrought", "melodrama", ",", "honestly", "."]
    inside = [t for t, sp in zip(enc.tokens, enc.special, strict=True) if not sp]
    # the text's tokens cover it exactly (the first carries the template's space before it)
    assert "".join(inside) == " " + text
    # template tokens are flagged and belong to no word
    assert enc.special[0] and enc.word_ids[0] == -1 and enc.special[-1]
    counts = {w: enc.word_ids.count(w) for w in range(len(enc.words))}
    assert max(counts.values()) > 1  # some word is split into several BPE pieces
    assert all(c >= 1 for c in counts.values())


def test_chat_template_marks_only_user_content(tiny_llama) -> None:
    enc = tiny_llama.encode(["good film"], chat=True)[0]
    assert "<|im_start|>user" in enc.sequence and enc.sequence.rstrip().endswith("assistant")
    assert [t for t, sp in zip(enc.tokens, enc.special, strict=True) if not sp] == ["good", " film"]
