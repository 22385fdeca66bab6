"""What users run on top of the pipeline: the command line, summary, diff, gradflow, schema,
emit."""
