# sd15_faceid_plus (FaceID-Plus) on the tiny sd15 family at 64 px, LoRA rank 8: seconds
# on a CPU. Write the family first: python tools/make_tiny_models.py
_base_ = ['./sd15_faceid_plus.py', '../_base_/tiny_faceid_sd15_run.py']

model = _base_._tiny_model
train_dataloader = _base_._tiny_train_dataloader
