# Fine-tune the published SD1.5 adapter (h94/IP-Adapter ip-adapter_sd15) on the
# mini dataset, with the image encoder it was trained with (OpenCLIP ViT-H/14),
# at a tenth of the learning rate: on small data this beats training from
# scratch. The file is fetched with the Hub's download code, or give a local
# path: --cfg-options model.pretrained_ip_adapter=/path/ip-adapter_sd15.safetensors
_base_ = ['./sd15_mini_dataset.py']

model = dict(
    image_encoder=dict(
        pretrained_model_name_or_path='h94/IP-Adapter', subfolder='models/image_encoder'
    ),
    pretrained_ip_adapter='h94/IP-Adapter/models/ip-adapter_sd15.safetensors',
)
optim_wrapper = dict(optimizer=dict(lr=1e-5))
