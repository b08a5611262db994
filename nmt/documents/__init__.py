"""Documents: a reader and writer per file format around the Translator.

`nmt.documents.formats` is the entry point: `read_document(data, fmt)` turns a file into text
units with their formatting, and `Document.render(translations)` puts translations back into the
same structure. `translate_document` does both around one batched translate call.
"""
