"""Run records -> results/<paper>/<table>_<variant>.md (and figures). Reads run.json files only;
never imports models or data."""
