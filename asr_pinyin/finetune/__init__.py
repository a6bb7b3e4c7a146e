"""Fine-tuning shared by both models: LoRA adapters through peft (lora.py)."""
