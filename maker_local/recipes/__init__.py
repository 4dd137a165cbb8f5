"""The training and evaluation recipes' shared code for the bundled models (models/hanoi-step,
models/hanoi-think, models/mul-step, models/hanoi-oss), imported by the scripts under models/.

`hanoi`: the hanoi-step char tokenizer, chat template, model config, data, teacher-forced scorer
and export to a Hugging Face folder; `mul`: the mul-step format and data on top of it;
`hanoi_oss`: gpt-oss's architecture with the o200k_harmony vocabulary, the harmony-format data,
the trainer's attention with sinks, the export; `schedule`: every trainer's learning rate. None
is imported by the CLI; torch and transformers are imported only inside the functions that use
them.
"""
