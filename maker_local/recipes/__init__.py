"""The training and evaluation recipes' shared code for the bundled models (models/hanoi-step,
models/hanoi-think, models/mul-step), imported by the scripts under models/.

`hanoi`: the hanoi-step char tokenizer, chat template, model config, data, teacher-forced scorer
and export to a Hugging Face folder; `mul`: the mul-step format and data on top of it. Neither
is imported by the CLI; torch and transformers are imported only inside the functions that use
them.
"""
