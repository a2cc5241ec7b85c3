"""Model families: one module each (LightningModule + the nn.Module it trains)."""
