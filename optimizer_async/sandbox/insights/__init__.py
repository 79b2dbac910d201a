"""CloudWatch Logs Insights as AWS documents it, for the sandbox: the query language
(`language.py`), the fields AWS discovers in each log event (`fields.py`) and a query's run
over weighted events (`engine.py`), whoever wrote them: the workload model's synthetic
lines (each standing for many invocations) and events put with PutLogEvents alike.

Sources: the Logs Insights query syntax pages (commands `fields`, `display`, `filter`,
`stats`, `sort`, `limit`, `parse`, `dedup`; operators and functions) and "Supported logs
and discovered fields" of the CloudWatch Logs user guide.
"""
