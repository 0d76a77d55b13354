# IP-Adapter Plus on the tiny sd15 family: head dim 64 and depth 4 as in the
# published files (the width is one head), 16 queries.
_base_ = ['./tiny_sd15_mini_dataset.py']

model = dict(
    image_projection=dict(
        _delete_=True,
        type='IPAdapterPlusImageProjection',
        hidden_dims=64,
        num_tokens=16,
    )
)
