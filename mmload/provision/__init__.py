"""Provisioning: resolve sizes, render Terraform from Jinja templates, drive the Terraform CLI."""
