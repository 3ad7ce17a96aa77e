// The shapes of what `gateway grafana export` writes, from Grafana's own published types
// (@grafana/schema: the dashboard model and the options of each panel plugin used here). Types only:
// nothing of the package is loaded at run time. tests/integration/grafana.test.ts checks the written
// JSON files against the same types with the TypeScript compiler.
import type { Dashboard, FieldConfigSource, Panel, VariableModel } from '@grafana/schema';
import type {
  FieldConfig as StateTimelineFieldConfig,
  Options as StateTimelineOptions,
} from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type {
  FieldConfig as TableFieldConfig,
  Options as TableOptions,
} from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type {
  FieldConfig as TimeSeriesFieldConfig,
  Options as TimeSeriesOptions,
} from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

/**
 * A type as JSON holds it: Grafana's enums (`TooltipDisplayMode.Multi`) become their values
 * (`'multi'`), which is what a dashboard file contains; every other constraint is kept.
 */
export type Json<T> = T extends string
  ? `${T}`
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends ReadonlyArray<infer U>
        ? Array<Json<U>>
        : T extends object
          ? { [K in keyof T]: Json<T[K]> }
          : T;

/** A query of Grafana's InfluxDB data source (its plugin publishes no schema): raw InfluxQL or Flux. */
export interface InfluxTarget {
  refId: string;
  datasource: { type: 'influxdb'; uid: string };
  query: string;
  rawQuery: true;
  resultFormat: 'time_series' | 'table';
  /** Grafana's legend for InfluxQL series (`$tag_equipment`). */
  alias?: string;
}

type Typed<P extends string, O, F> = Json<Omit<Panel, 'options' | 'fieldConfig' | 'targets' | 'type'>> & {
  type: P;
  options: Json<O>;
  fieldConfig: Json<FieldConfigSource<F>>;
  targets: InfluxTarget[];
};

export type TimeSeriesPanel = Typed<'timeseries', TimeSeriesOptions, TimeSeriesFieldConfig>;
export type StateTimelinePanel = Typed<'state-timeline', StateTimelineOptions, StateTimelineFieldConfig>;
export type TablePanel = Typed<'table', TableOptions, TableFieldConfig>;
export type GatewayPanel = TimeSeriesPanel | StateTimelinePanel | TablePanel;

/** A dashboard of the export: Grafana's model, with the panels above and the variables as JSON. */
export type GatewayDashboard = Json<Omit<Dashboard, 'panels' | 'templating'>> & {
  panels: GatewayPanel[];
  templating: { list: Array<Json<VariableModel>> };
};
