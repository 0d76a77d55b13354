"""Tokenizers that need no download: a byte-level CLIP BPE, a T5 Unigram and
a byte-level Qwen2 BPE.

Both are real transformers tokenizers (saved and reloaded with
``from_pretrained``), with vocabularies small enough to build in
milliseconds; token ids stay below every text encoder's vocabulary size.
"""

from typing import Any

__all__ = [
    'build_tiny_clip_tokenizer',
    'build_tiny_t5_tokenizer',
    'build_tiny_qwen_tokenizer',
    'TINY_QWEN_SPECIALS',
    'TINY_QWEN_VOCAB',
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


# The words of QwenImagePipeline's prompt template (and a few of a prompt),
# each one token of the tiny Qwen2 tokenizer, as of Qwen's: the template's
# first 34 tokens, the ones the pipeline drops, are its system turn and the
# user turn's opening, as with the real tokenizer.
QWEN_WORDS = (
    'system', 'user', 'assistant', 'Describe', ' the', ' image', ' by',
    ' detailing', ' color', ' shape', ' size', ' texture', ' quantity', ' text',
    ' spatial', ' relationships', ' of', ' objects', ' and', ' background',
    ' a', ' cat', ' quality', ' best', ' high',
)  # fmt: skip
# Ids of <|endoftext|> (pad), <|im_start|>, <|im_end|>; the vocabulary size.
TINY_QWEN_SPECIALS, TINY_QWEN_VOCAB = (377, 378, 379), 380


def build_tiny_qwen_tokenizer() -> Any:
    """A ``Qwen2Tokenizer`` (Qwen's pre-tokenizer regex, byte-level BPE):
    the 256 bytes, merges that make each of :data:`QWEN_WORDS` one token,
    and the chat template's special tokens (380 ids)."""
    from transformers import Qwen2Tokenizer

    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars)}
    merges = []
    for word in QWEN_WORDS:
        word = ''.join(chars[b] for b in word.encode())
        current = word[0]
        for char in word[1:]:
            if current + char not in vocab:
                vocab[current + char] = len(vocab)
                merges.append((current, char))
            current += char
    specials = ('<|endoftext|>', '<|im_start|>', '<|im_end|>')
    for token in specials:
        vocab[token] = len(vocab)
    assert tuple(vocab[t] for t in specials) == TINY_QWEN_SPECIALS, len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=32768)
    tokenizer.add_special_tokens({'additional_special_tokens': list(specials[1:])})
    return tokenizer
