"""GRIT_data reading, the embedded synthetic generator, gold chains and prompt texts.

Modules: `reader` (load_rows, load_dataset_splits), `validation` (one row), `synthetic` and
`synthetic_scenes` (the generator), `gold_chain` (chains in a model family's box frame),
`prompts` (user text), `tokenizer_corpus` (text for tiny tokenizers), `download` (GRIT_data from
the hub). Nothing is imported here, so that `import grit_exp.data.schema` stays light.
"""
