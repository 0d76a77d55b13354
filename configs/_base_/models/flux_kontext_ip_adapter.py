# IP-Adapter on FLUX.1 Kontext [dev] with the CLIP ViT-L/14 image encoder, in
# XLabs' FLUX.1 layout: 4 image tokens of 4096 and image K/V (with biases) in
# the 19 double-stream blocks. Training conditions on each record's input
# image as FluxKontextPipeline does; the adapter reads the reference.
# diffusers' FluxKontextPipeline.load_ip_adapter loads the converted file.
_base_ = ['./flux_ip_adapter.py']

model = dict(
    pretrained_model_name_or_path='black-forest-labs/FLUX.1-Kontext-dev',
    family=dict(type='FluxKontext', guidance_scale=3.5),
)
