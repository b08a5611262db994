"""Language models: recurrent LMs over a text stream (TBPTT), sampling, evaluation and fusion."""
