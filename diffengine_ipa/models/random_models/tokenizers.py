"""Tokenizers that need no download: a byte-level CLIP BPE and a T5 Unigram.

Both are real transformers tokenizers (saved and reloaded with
``from_pretrained``), with vocabularies small enough to build in
milliseconds; token ids stay below every text encoder's vocabulary size.
"""

from typing import Any

__all__ = [
    'build_tiny_clip_tokenizer',
    'build_tiny_t5_tokenizer',
    'TINY_BOS',
    'TINY_EOS',
    'TINY_VOCAB',
    'bytes_to_unicode',
]

# Token ids of the tokenizer built by build_tiny_clip_tokenizer().
TINY_BOS, TINY_EOS, TINY_VOCAB = 515, 516, 517


def bytes_to_unicode() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE maps bytes to."""
    printable = (
        list(range(ord('!'), ord('~') + 1))
        + list(range(ord('¡'), ord('¬') + 1))
        + list(range(ord('®'), ord('ÿ') + 1))
    )
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def build_tiny_clip_tokenizer() -> Any:
    """A CLIP tokenizer: bytes, their word-final forms, three merges and the
    two special tokens (517 ids)."""
    from transformers import CLIPTokenizer

    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + '</w>': len(chars) + i for i, c in enumerate(chars)})
    merges = [('t', 'h'), ('th', 'e</w>'), ('a', 'n')]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab['<|startoftext|>'] = len(vocab)
    vocab['<|endoftext|>'] = len(vocab)
    assert (vocab['<|startoftext|>'], len(vocab)) == (TINY_BOS, TINY_VOCAB)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def build_tiny_t5_tokenizer(
    model_max_length: int = 512, words: tuple[str, ...] = ('the', 'a', 'of', 'cat')
) -> Any:
    """A T5 tokenizer (SentencePiece-style Unigram, ``▁`` word starts,
    ``</s>`` appended): printable ASCII characters, with and without a word
    start, plus ``words`` each as one piece (198 ids with the default four)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    chars = [chr(c) for c in range(33, 127)]
    vocab = [('<pad>', 0.0), ('</s>', 0.0), ('<unk>', 0.0), ('▁', -2.0)]
    vocab += [(c, -3.0) for c in chars] + [('▁' + c, -2.5) for c in chars]
    vocab += [('▁' + w, -1.0) for w in words]
    model = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    model.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement='▁', prepend_scheme='always'
    )
    model.decoder = decoders.Metaspace(replacement='▁', prepend_scheme='always')
    model.post_processor = processors.TemplateProcessing(
        single='$A </s>', pair='$A </s> $B </s>', special_tokens=[('</s>', 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=model,
        eos_token='</s>',
        unk_token='<unk>',
        pad_token='<pad>',
        extra_ids=0,
        model_max_length=model_max_length,
    )
